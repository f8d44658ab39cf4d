//! Rows as the store hands them out. Sealed values stay sealed here:
//! opening them is the caller's business, with keys the store never sees.

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::{Email, Role};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRecord {
    pub email: Email,
    pub role: Role,
    pub created_at: UnixTime,
}

/// An owner's data key as stored: wrapped under the master key `master_kid`.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub wrapped: Vec<u8>,
    pub master_kid: String,
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WrappedKey(master_kid={})", self.master_kid)
    }
}

#[derive(Debug, Clone)]
pub struct NewOwner {
    pub email: Email,
    pub role: Role,
    pub data_key: WrappedKey,
    pub created_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapState {
    /// Not yet claimed; the digest of the current code, if one was set.
    Unclaimed {
        code_digest: Option<Vec<u8>>,
    },
    Claimed {
        by: Email,
    },
}

#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub public_key: Vec<u8>,
    /// The private key sealed under the master key `master_kid`.
    pub sealed_private: Vec<u8>,
    pub master_kid: String,
    pub created_at: UnixTime,
    pub retired_at: Option<UnixTime>,
    /// After this instant no token signed by the key can still be valid.
    pub verify_until: Option<UnixTime>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("retired_at", &self.retired_at)
            .field("verify_until", &self.verify_until)
            .finish_non_exhaustive()
    }
}

/// A secret as stored; `sealed` opens only under its owner's data key with
/// (owner, name) as associated data.
#[derive(Clone)]
pub struct SecretRecord {
    pub owner: Email,
    pub name: String,
    pub sealed: Vec<u8>,
    /// JSON array of host patterns.
    pub allowed_hosts: String,
    /// JSON object `{"header","format"}`, if any.
    pub inject: Option<String>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("owner", &self.owner)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Replaced,
}

/// One generation of the installation's egress CA (SPEC §6).
#[derive(Clone)]
pub struct EgressCaRecord {
    /// 1 for the first CA, one more for each rotation.
    pub generation: i64,
    /// The self-signed CA certificate, PEM: what clients trust.
    pub cert_pem: String,
    /// This CA's certificate signed by the previous generation, PEM, so
    /// a client that trusts only the previous CA still verifies leaves.
    pub cross_pem: Option<String>,
    /// The private key (PKCS#8 PEM) sealed under the master key
    /// `master_kid`.
    pub sealed_key: Vec<u8>,
    pub master_kid: String,
    pub created_at: UnixTime,
    /// When a newer generation took over signing.
    pub retired_at: Option<UnixTime>,
    /// Until when a retired CA stays in the served bundle.
    pub trust_until: Option<UnixTime>,
}

impl std::fmt::Debug for EgressCaRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressCaRecord")
            .field("generation", &self.generation)
            .field("master_kid", &self.master_kid)
            .field("retired_at", &self.retired_at)
            .field("trust_until", &self.trust_until)
            .finish_non_exhaustive()
    }
}

/// A re-wrapped key, written back by master-key rotation.
#[derive(Debug, Clone)]
pub enum Rewrapped {
    DataKey {
        owner: Email,
        key: WrappedKey,
    },
    SigningKey {
        kid: String,
        sealed_private: Vec<u8>,
        master_kid: String,
    },
    /// The egress CA key of a generation; `cert_pem` is read only (it is
    /// part of the sealed key's associated data).
    EgressCa {
        generation: i64,
        cert_pem: String,
        sealed_key: Vec<u8>,
        master_kid: String,
    },
}

impl Rewrapped {
    /// The master key the value is wrapped under.
    pub fn master_kid(&self) -> &str {
        match self {
            Rewrapped::DataKey { key, .. } => &key.master_kid,
            Rewrapped::SigningKey { master_kid, .. } | Rewrapped::EgressCa { master_kid, .. } => {
                master_kid
            }
        }
    }
}

/// A token Gatehouse issued; its value is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub jti: String,
    pub owner: Email,
    pub subject: String,
    pub class: gatehouse_domain::CredentialClass,
    pub scope: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationKind {
    /// One token.
    Jti { jti: String },
    /// Every token of `subject` (of `owner`, or of any owner when `None`)
    /// issued at or before `not_before`.
    Subject {
        owner: Option<Email>,
        subject: String,
    },
    /// Every token of the owner, sessions included.
    Owner { owner: Email },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Assigned by the store; orders revocations for incremental sync.
    pub id: i64,
    pub kind: RevocationKind,
    pub not_before: UnixTime,
    /// After this instant every token it covers has expired anyway.
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantMode {
    Placeholder,
    Value,
}

impl GrantMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placeholder => "placeholder",
            Self::Value => "value",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "placeholder" => Some(Self::Placeholder),
            "value" => Some(Self::Value),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub env_var: String,
    pub secret: String,
    pub mode: GrantMode,
}

/// A stand-in for a secret value. The string itself is a capability of
/// the job it belongs to, so it is kept out of `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PlaceholderRecord {
    pub placeholder: String,
    pub owner: Email,
    pub job_id: String,
    pub secret: String,
    /// JSON array of host patterns, copied from the secret at grant time:
    /// a record of the grant only. What a placeholder may be swapped
    /// towards is its secret's current `allowed_hosts` ([`crate::JobMaterial`]).
    pub allowed_hosts: String,
    pub expires_at: UnixTime,
}

impl std::fmt::Debug for PlaceholderRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaceholderRecord")
            .field("job_id", &self.job_id)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: String,
    pub owner: Email,
    pub agent: String,
    pub created_by: String,
    pub token_jti: String,
    /// JSON array of validated package names.
    pub packages: String,
    /// JSON array of host patterns.
    pub allow_hosts: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub deleted_at: Option<UnixTime>,
    pub grants: Vec<Grant>,
    /// The number of grants at creation.
    pub grant_count: i64,
}

/// An inbound webhook endpoint. `sealed` is the provider secret (or, for
/// Discord, the public key) sealed under the owner's data key.
#[derive(Clone)]
pub struct HookRecord {
    pub id: String,
    pub owner: Email,
    pub provider: String,
    pub sealed: Vec<u8>,
    pub forward_to: String,
    pub created_at: UnixTime,
}

/// An upstream MCP server an owner registered for the gateway (SPEC §13).
/// Holds the name of the owner's secret for the upstream's auth header,
/// never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerRecord {
    pub owner: Email,
    pub name: String,
    pub url: String,
    /// JSON `{"secret", "header", "format"}`; `None`: no auth header.
    pub auth: Option<String>,
    /// JSON `{"allow": [...], "gated": [...]}` of tool-name globs.
    pub tools: String,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl std::fmt::Debug for HookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookRecord")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}
