//! The one token verification function.

use ed25519_dalek::VerifyingKey;
use thiserror::Error;

use super::claims::Claims;
use super::jws::{self, ALG};
use super::policy::{class_maximum, TokenPolicy, MAX_TOKEN_BYTES};
use crate::clock::UnixTime;
use crate::email::Email;

/// Public keys by `kid`: the current signing key and every retired key
/// still needed to verify tokens that have not yet expired.
pub trait KeyLookup {
    fn verifying_key(&self, kid: &str) -> Option<VerifyingKey>;
}

/// The node's view of revocations (single `jti`s and not-before
/// watermarks per subject and owner).
pub trait RevocationView {
    /// `Err` when the view cannot be trusted (store unreachable, too
    /// stale): the caller must fail closed.
    fn is_revoked(&self, claims: &Claims) -> Result<bool, ViewUnavailable>;
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("the revocation view is unavailable")]
pub struct ViewUnavailable;

/// Why a token was refused. The reasons go to the audit log and the
/// server log; callers only ever see "invalid token".
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    #[error("token longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("algorithm is not EdDSA")]
    Algorithm,
    #[error("key id is not of the expected form")]
    KeyIdForm,
    #[error("unknown key id")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
    #[error("invalid claim: {0}")]
    Claim(&'static str),
    #[error("token lifetime above its class maximum")]
    LifetimeAboveMaximum,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
    #[error("revocation view unavailable")]
    RevocationUnavailable,
}

impl TokenError {
    /// A short stable code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLong => "too_long",
            Self::Malformed(_) => "malformed",
            Self::Algorithm => "algorithm",
            Self::KeyIdForm => "kid_form",
            Self::UnknownKey => "unknown_kid",
            Self::Signature => "signature",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::Claim(_) => "claim",
            Self::LifetimeAboveMaximum => "lifetime",
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::RevocationUnavailable => "revocation_unavailable",
        }
    }
}

impl From<jws::Malformed> for TokenError {
    fn from(m: jws::Malformed) -> Self {
        Self::Malformed(m.0)
    }
}

/// `kid`s are short opaque names: nothing path-like, nothing to inject.
pub fn kid_is_well_formed(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn jti_is_well_formed(jti: &str) -> bool {
    jti.len() == 22 && jws::b64_decode(jti).is_ok_and(|b| b.len() == 16)
}

/// Remembers tokens whose signature and claims were already verified, so
/// a repeated token skips the signature check. Keys must be unguessable
/// digests of the whole token (see the API's token cache).
pub trait VerifiedCache {
    fn get(&self, token: &str) -> Option<Claims>;
    fn put(&self, token: &str, claims: &Claims);
}

/// No cache: every token is verified in full.
pub struct NoCache;

impl VerifiedCache for NoCache {
    fn get(&self, _: &str) -> Option<Claims> {
        None
    }
    fn put(&self, _: &str, _: &Claims) {}
}

/// Turns a presented token into trusted claims, or refuses it.
///
/// Order: size, shape and header first (cheap, no crypto), then the key
/// and the signature, then the claims, then revocation. A revocation view
/// that cannot answer refuses the token: nothing gets through on doubt.
pub fn verify_token<K, R>(
    token: &str,
    keys: &K,
    revocations: &R,
    policy: &TokenPolicy,
    now: UnixTime,
) -> Result<Claims, TokenError>
where
    K: KeyLookup + ?Sized,
    R: RevocationView + ?Sized,
{
    verify_token_cached(token, keys, revocations, &NoCache, policy, now)
}

/// [`verify_token`] with a cache of verified tokens. A cached token still
/// has its time window and its revocation checked on every call; only the
/// signature and claim parsing are skipped.
pub fn verify_token_cached<K, R, C>(
    token: &str,
    keys: &K,
    revocations: &R,
    cache: &C,
    policy: &TokenPolicy,
    now: UnixTime,
) -> Result<Claims, TokenError>
where
    K: KeyLookup + ?Sized,
    R: RevocationView + ?Sized,
    C: VerifiedCache + ?Sized,
{
    let claims = match cache.get(token) {
        Some(claims) => {
            check_time(&claims, policy, now)?;
            claims
        }
        None => {
            let claims = verify_signature_and_claims(token, keys, policy, now)?;
            cache.put(token, &claims);
            claims
        }
    };
    match revocations.is_revoked(&claims) {
        Ok(false) => Ok(claims),
        Ok(true) => Err(TokenError::Revoked),
        Err(ViewUnavailable) => Err(TokenError::RevocationUnavailable),
    }
}

/// Everything but revocation; private so no caller can skip that step.
fn verify_signature_and_claims<K: KeyLookup + ?Sized>(
    token: &str,
    keys: &K,
    policy: &TokenPolicy,
    now: UnixTime,
) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLong);
    }
    let parsed = jws::split(token)?;
    if parsed.header.alg != ALG {
        return Err(TokenError::Algorithm);
    }
    signature_and_claims(&parsed, keys, policy, now)
}

/// The steps after the algorithm check: key, Ed25519 signature, claims.
/// Separate so the tests can prove that a token of another algorithm
/// fails here too, with the algorithm check out of the way.
fn signature_and_claims<K: KeyLookup + ?Sized>(
    parsed: &jws::Parsed<'_>,
    keys: &K,
    policy: &TokenPolicy,
    now: UnixTime,
) -> Result<Claims, TokenError> {
    if !kid_is_well_formed(&parsed.header.kid) {
        return Err(TokenError::KeyIdForm);
    }
    let key = keys
        .verifying_key(&parsed.header.kid)
        .ok_or(TokenError::UnknownKey)?;
    // Strict verification refuses small-order keys and non-canonical
    // signatures, so a signature has exactly one valid encoding.
    key.verify_strict(parsed.signing_input, &parsed.signature)
        .map_err(|_| TokenError::Signature)?;
    let claims = jws::decode_claims(parsed.payload_b64)?;
    check_claims(&claims, policy, now)?;
    Ok(claims)
}

fn check_claims(c: &Claims, policy: &TokenPolicy, now: UnixTime) -> Result<(), TokenError> {
    if c.iss != policy.issuer {
        return Err(TokenError::Issuer);
    }
    if c.aud != policy.audience {
        return Err(TokenError::Audience);
    }
    if c.sub.is_empty() || c.sub.len() > 256 {
        return Err(TokenError::Claim("sub"));
    }
    if !Email::parse(&c.owner).is_ok_and(|e| e.as_str() == c.owner) {
        return Err(TokenError::Claim("owner"));
    }
    if !jti_is_well_formed(&c.jti) {
        return Err(TokenError::Claim("jti"));
    }
    if crate::principal::ScopeSet::parse(&c.scope).is_err() {
        return Err(TokenError::Claim("scope"));
    }
    // iat <= nbf < exp (so exp > iat as well).
    if c.nbf < c.iat || c.nbf >= c.exp {
        return Err(TokenError::Claim("iat/nbf/exp out of order"));
    }
    if c.exp
        .checked_sub(c.iat)
        .is_none_or(|lifetime| lifetime > class_maximum(c.cls))
    {
        return Err(TokenError::LifetimeAboveMaximum);
    }
    check_time(c, policy, now)
}

fn check_time(c: &Claims, policy: &TokenPolicy, now: UnixTime) -> Result<(), TokenError> {
    let skew = policy.clock_skew;
    // nbf >= iat for every verified token; the larger of the two decides.
    if c.iat.max(c.nbf) > now + skew {
        return Err(TokenError::NotYetValid);
    }
    if now - skew >= c.exp {
        return Err(TokenError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
