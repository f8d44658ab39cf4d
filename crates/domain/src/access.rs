//! What a route demands of its caller: the scope it needs, the credential
//! classes it admits, and whether only the operator may call it.
//!
//! Each route of the API names its [`Rule`] in the one route table; the
//! `Principal` extractor calls [`Rule::admit`] before the handler runs, so
//! no handler carries its own, possibly different, label. Human sessions
//! hold every scope of their role (SPEC §2), so the scope test bites on
//! non-interactive credentials.

use crate::principal::{AccessDenied, CredentialClass, Principal, Role, Scope, ScopeSet};

/// The access rule of one authenticated route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The scope the caller must hold; `None` for routes any admitted
    /// credential may call (`whoami`, the approval inbox, session-only
    /// routes whose class already says "a human").
    pub scope: Option<Scope>,
    /// The credential classes admitted; anything else is refused.
    pub classes: &'static [CredentialClass],
    /// Only a credential of the operator's account.
    pub operator: bool,
}

/// A human session only.
pub const SESSION: &[CredentialClass] = &[CredentialClass::Session];
/// Humans and automation, never a job (job tokens reach only their own
/// routes).
pub const NOT_JOB: &[CredentialClass] = &[
    CredentialClass::Session,
    CredentialClass::Api,
    CredentialClass::Agent,
];
/// A job token only.
pub const JOB: &[CredentialClass] = &[CredentialClass::Job];
/// Every class.
pub const ANY: &[CredentialClass] = &CredentialClass::ALL;

impl Rule {
    pub const fn new(scope: Option<Scope>, classes: &'static [CredentialClass]) -> Self {
        Self {
            scope,
            classes,
            operator: false,
        }
    }

    /// The same rule, for the operator's account only.
    pub const fn operator_only(self) -> Self {
        Self {
            operator: true,
            ..self
        }
    }

    pub fn admits_class(&self, class: CredentialClass) -> bool {
        self.classes.contains(&class)
    }

    /// The one check of a caller against a route's rule. Order: the scope
    /// (so a token without it hears `insufficient_scope`, SPEC §2), then
    /// the class, then the operator role.
    pub fn admit(&self, principal: &Principal) -> Result<(), AccessDenied> {
        self.admit_parts(principal.class, principal.scopes, principal.role)
    }

    /// [`Rule::admit`] from the credential's parts, for callers that have
    /// not resolved a whole [`Principal`] (the job-credential route).
    pub fn admit_parts(
        &self,
        class: CredentialClass,
        scopes: ScopeSet,
        role: Role,
    ) -> Result<(), AccessDenied> {
        if let Some(scope) = self.scope {
            if !scopes.contains(scope) {
                return Err(AccessDenied::InsufficientScope(scope.as_str()));
            }
        }
        if !self.admits_class(class) {
            return Err(if self.classes == SESSION {
                AccessDenied::HumanSessionRequired
            } else {
                AccessDenied::ClassNotAdmitted(class.as_str())
            });
        }
        if self.operator && role != Role::Operator {
            return Err(AccessDenied::OperatorRequired);
        }
        Ok(())
    }

    /// One line for humans (the OpenAPI document shows it).
    pub fn describe(&self) -> String {
        let classes: Vec<&str> = self.classes.iter().map(|c| c.as_str()).collect();
        format!(
            "scope {}; classes {}{}",
            self.scope.map_or("-", Scope::as_str),
            classes.join(","),
            if self.operator { "; operator" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Email;

    fn principal(class: CredentialClass, scopes: ScopeSet, role: Role) -> Principal {
        Principal {
            subject: "s".into(),
            owner: Email::parse("a@x.org").unwrap(),
            class,
            scopes,
            role,
            jti: None,
            expires_at: None,
        }
    }

    #[test]
    fn a_token_without_the_scope_is_refused_whatever_its_class() {
        let rule = Rule::new(Some(Scope::SecretsWrite), NOT_JOB);
        let none = ScopeSet::empty();
        for class in [
            CredentialClass::Api,
            CredentialClass::Agent,
            CredentialClass::Job,
        ] {
            assert_eq!(
                rule.admit(&principal(class, none, Role::Owner)),
                Err(AccessDenied::InsufficientScope("secrets:write"))
            );
        }
        let with = ScopeSet::of(&[Scope::SecretsWrite]);
        assert!(rule
            .admit(&principal(CredentialClass::Api, with, Role::Owner))
            .is_ok());
        assert!(rule
            .admit(&principal(
                CredentialClass::Session,
                ScopeSet::for_role(Role::Owner),
                Role::Owner
            ))
            .is_ok());
    }

    #[test]
    fn classes_not_admitted_are_refused_even_with_every_scope() {
        let all = ScopeSet::of(&Scope::ALL);
        let rule = Rule::new(None, NOT_JOB);
        assert_eq!(
            rule.admit(&principal(CredentialClass::Job, all, Role::Owner)),
            Err(AccessDenied::ClassNotAdmitted("job"))
        );
        let human = Rule::new(None, SESSION);
        assert_eq!(
            human.admit(&principal(CredentialClass::Api, all, Role::Operator)),
            Err(AccessDenied::HumanSessionRequired)
        );
        let job = Rule::new(Some(Scope::CredentialsRead), JOB);
        assert!(job
            .admit(&principal(CredentialClass::Job, all, Role::Owner))
            .is_ok());
        assert_eq!(
            job.admit(&principal(CredentialClass::Session, all, Role::Owner)),
            Err(AccessDenied::ClassNotAdmitted("session"))
        );
    }

    #[test]
    fn operator_rules_need_the_operator_account() {
        let rule = Rule::new(None, SESSION).operator_only();
        let owner = principal(
            CredentialClass::Session,
            ScopeSet::for_role(Role::Owner),
            Role::Owner,
        );
        assert_eq!(rule.admit(&owner), Err(AccessDenied::OperatorRequired));
        let op = principal(
            CredentialClass::Session,
            ScopeSet::for_role(Role::Operator),
            Role::Operator,
        );
        assert!(rule.admit(&op).is_ok());
        let op_api = principal(
            CredentialClass::Api,
            ScopeSet::for_role(Role::Operator),
            Role::Operator,
        );
        assert_eq!(
            rule.admit(&op_api),
            Err(AccessDenied::HumanSessionRequired),
            "an operator's api token is automation, not the operator"
        );
    }
}
