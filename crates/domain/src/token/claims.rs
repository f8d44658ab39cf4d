//! The claim set of every Gatehouse token.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::principal::CredentialClass;

/// Unknown claims are refused and duplicate keys are an error (serde's
/// derive rejects a field seen twice), so a token means exactly one thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub owner: String,
    pub cls: CredentialClass,
    pub jti: String,
    pub iat: UnixTime,
    pub nbf: UnixTime,
    pub exp: UnixTime,
    pub scope: String,
}

/// The JOSE header. Only these three members are accepted: no `jku`,
/// `x5u`, `crit` or embedded keys that could redirect verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub alg: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// Builds the claims of a new token. The lifetime is the class default
/// unless one is asked for, and is refused above the class maximum.
pub fn new_claims(
    policy: &super::TokenPolicy,
    class: CredentialClass,
    subject: &str,
    owner: &crate::email::Email,
    scopes: crate::principal::ScopeSet,
    ttl: Option<i64>,
    now: UnixTime,
) -> Result<Claims, super::LifetimeError> {
    let lifetime = policy.lifetime(class, ttl)?;
    Ok(Claims {
        iss: policy.issuer.clone(),
        aud: policy.audience.clone(),
        sub: subject.to_string(),
        owner: owner.as_str().to_string(),
        cls: class,
        jti: crate::codes::random_id(),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        scope: scopes.to_string(),
    })
}
