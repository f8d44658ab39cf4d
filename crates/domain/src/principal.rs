//! Who is calling: the credential class, the owner they act for and the
//! scopes they hold. Every authorization decision reads a [`Principal`].

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

use crate::clock::UnixTime;
use crate::email::Email;

/// The four credential classes of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialClass {
    /// A human, interactive.
    Session,
    /// Non-interactive token for scripts, CI, operator automation.
    Api,
    /// A named non-human actor working for one owner.
    Agent,
    /// One sandboxed run of an agent.
    Job,
}

impl CredentialClass {
    pub const ALL: [CredentialClass; 4] = [Self::Session, Self::Api, Self::Agent, Self::Job];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Api => "api",
            Self::Agent => "agent",
            Self::Job => "job",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Only a human session is interactive; everything else is treated as
    /// automation, whatever scopes it carries.
    pub fn is_interactive(self) -> bool {
        matches!(self, Self::Session)
    }
}

impl fmt::Display for CredentialClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    SecretsWrite,
    TokensWrite,
    JobsCreate,
    JobsRead,
    HooksWrite,
    AuditRead,
    ApprovalBypass,
    CredentialsRead,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Self::SecretsWrite,
        Self::TokensWrite,
        Self::JobsCreate,
        Self::JobsRead,
        Self::HooksWrite,
        Self::AuditRead,
        Self::ApprovalBypass,
        Self::CredentialsRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretsWrite => "secrets:write",
            Self::TokensWrite => "tokens:write",
            Self::JobsCreate => "jobs:create",
            Self::JobsRead => "jobs:read",
            Self::HooksWrite => "hooks:write",
            Self::AuditRead => "audit:read",
            Self::ApprovalBypass => "approval:bypass",
            Self::CredentialsRead => "credentials:read",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown scope {0:?}")]
pub struct UnknownScope(pub String);

/// A set of scopes; its text form is space-separated, in canonical order.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeSet(u16);

impl ScopeSet {
    pub fn empty() -> Self {
        Self(0)
    }

    pub fn of(scopes: &[Scope]) -> Self {
        Self(scopes.iter().fold(0, |acc, s| acc | s.bit()))
    }

    pub fn parse(text: &str) -> Result<Self, UnknownScope> {
        text.split_ascii_whitespace()
            .try_fold(Self(0), |acc, word| {
                Scope::ALL
                    .into_iter()
                    .find(|s| s.as_str() == word)
                    .map(|s| Self(acc.0 | s.bit()))
                    .ok_or_else(|| UnknownScope(word.chars().take(40).collect()))
            })
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_subset_of(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// What a human session of this role holds.
    pub fn for_role(role: Role) -> Self {
        let owner = Self::of(&[
            Scope::SecretsWrite,
            Scope::TokensWrite,
            Scope::JobsCreate,
            Scope::JobsRead,
            Scope::HooksWrite,
            Scope::AuditRead,
        ]);
        match role {
            Role::Owner => owner,
            Role::Operator => Self(owner.0 | Scope::ApprovalBypass.bit()),
        }
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&words.join(" "))
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({self})")
    }
}

/// The human role of an owner account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The person who installed Gatehouse (first claimant). Also an owner.
    Operator,
    Owner,
}

/// An authenticated caller, resolved against the store: its owner exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub owner: Email,
    pub class: CredentialClass,
    pub scopes: ScopeSet,
    /// The role of the owner account behind the credential.
    pub role: Role,
    /// Present for token credentials; absent for a trusted-proxy identity.
    pub jti: Option<String>,
    pub expires_at: Option<UnixTime>,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum AccessDenied {
    #[error("this credential lacks the scope {0}")]
    InsufficientScope(&'static str),
    #[error("only a human session may do this")]
    HumanSessionRequired,
    #[error("only the operator may do this")]
    OperatorRequired,
    #[error("{0} credentials may not call this route")]
    ClassNotAdmitted(&'static str),
}

impl Principal {
    pub fn is_operator(&self) -> bool {
        self.role == Role::Operator
    }

    pub fn is_human(&self) -> bool {
        self.class.is_interactive()
    }

    pub fn require_scope(&self, scope: Scope) -> Result<(), AccessDenied> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AccessDenied::InsufficientScope(scope.as_str()))
        }
    }

    pub fn require_human(&self) -> Result<(), AccessDenied> {
        if self.is_human() {
            Ok(())
        } else {
            Err(AccessDenied::HumanSessionRequired)
        }
    }

    /// Operator rights need a human session of the operator: an operator's
    /// api token is automation and does not carry them.
    pub fn require_operator_session(&self) -> Result<(), AccessDenied> {
        self.require_human()?;
        if self.is_operator() {
            Ok(())
        } else {
            Err(AccessDenied::OperatorRequired)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_sets_round_trip_through_text() {
        let s = ScopeSet::parse("audit:read  secrets:write").unwrap();
        assert!(s.contains(Scope::AuditRead) && s.contains(Scope::SecretsWrite));
        assert!(!s.contains(Scope::JobsRead));
        assert_eq!(s.to_string(), "secrets:write audit:read");
        assert_eq!(ScopeSet::parse(&s.to_string()).unwrap(), s);
        assert_eq!(ScopeSet::parse("").unwrap(), ScopeSet::empty());
        assert!(ScopeSet::parse("secrets:write admin").is_err());
    }

    #[test]
    fn only_the_operator_role_holds_bypass() {
        assert!(!ScopeSet::for_role(Role::Owner).contains(Scope::ApprovalBypass));
        assert!(ScopeSet::for_role(Role::Operator).contains(Scope::ApprovalBypass));
        assert!(ScopeSet::for_role(Role::Owner).is_subset_of(ScopeSet::for_role(Role::Operator)));
        assert!(!ScopeSet::for_role(Role::Operator).contains(Scope::CredentialsRead));
    }

    #[test]
    fn operator_api_tokens_do_not_carry_operator_rights() {
        let p = Principal {
            subject: "ops".into(),
            owner: Email::parse("op@x.org").unwrap(),
            class: CredentialClass::Api,
            scopes: ScopeSet::for_role(Role::Operator),
            role: Role::Operator,
            jti: None,
            expires_at: None,
        };
        assert_eq!(
            p.require_operator_session(),
            Err(AccessDenied::HumanSessionRequired)
        );
        assert!(p.require_scope(Scope::AuditRead).is_ok());
    }
}
