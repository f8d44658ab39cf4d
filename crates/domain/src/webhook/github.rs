//! GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw
//! body under the webhook secret.
//!
//! GitHub still sends the legacy SHA-1 `X-Hub-Signature` beside it. SHA-1
//! is not accepted: a request carrying only that header is refused with
//! its own reason (`sha1_only`) so a misconfigured sender is easy to spot.
//! The same scheme serves Meta (see `meta.rs`). GitHub signs no timestamp,
//! so freshness rests on the caller's replay memory alone.

use super::error::WebhookError;
use super::headers::{optional_header, prefixed_hex, HeaderLookup};
use super::mac::{hmac_sha256, mac_matches, require_secret};
use super::provider::Provider;
use super::replay::ReplayKey;
use super::{Verified, Verifier};
use crate::clock::UnixTime;
use crate::secret::SecretBytes;

pub(crate) const SIGNATURE_256: &str = "X-Hub-Signature-256";
pub(crate) const SIGNATURE_SHA1: &str = "X-Hub-Signature";

#[derive(Debug, Clone)]
pub struct GithubVerifier {
    secret: SecretBytes,
}

impl GithubVerifier {
    pub fn new(secret: SecretBytes) -> Result<Self, WebhookError> {
        require_secret(&secret)?;
        Ok(Self { secret })
    }
}

impl Verifier for GithubVerifier {
    fn provider(&self) -> Provider {
        Provider::Github
    }

    fn verify(
        &self,
        body: &[u8],
        headers: &dyn HeaderLookup,
        _now: UnixTime,
    ) -> Result<Verified, WebhookError> {
        verify_hub_signature(Provider::Github, &self.secret, body, headers)
    }
}

/// The `X-Hub-Signature-256` scheme shared by GitHub and Meta.
pub(crate) fn verify_hub_signature(
    provider: Provider,
    secret: &SecretBytes,
    body: &[u8],
    headers: &dyn HeaderLookup,
) -> Result<Verified, WebhookError> {
    let Some(value) = optional_header(headers, SIGNATURE_256)? else {
        return Err(match headers.header(SIGNATURE_SHA1) {
            Some(_) => WebhookError::Sha1Only,
            None => WebhookError::MissingHeader(SIGNATURE_256.to_string()),
        });
    };
    let presented = prefixed_hex::<32>(value, "sha256=")
        .ok_or_else(|| WebhookError::malformed(SIGNATURE_256, "not sha256= and 64 hex digits"))?;
    let expected = hmac_sha256(secret, &[body])?;
    if !mac_matches(&expected, &presented) {
        return Err(WebhookError::BadSignature);
    }
    Ok(Verified {
        provider,
        timestamp: None,
        replay_key: ReplayKey::derive(provider, None, &expected),
    })
}

#[cfg(test)]
mod tests {
    use super::super::replay::ReplayGuard;
    use super::super::test_support::*;
    use super::*;

    const SECRET: &str = "It's a Secret to Everybody";
    const PAYLOAD: &[u8] = b"Hello, World!";
    const DOCUMENTED: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn verifier(secret: &str) -> GithubVerifier {
        GithubVerifier::new(SecretBytes::from_string(secret.to_string())).unwrap()
    }

    fn check(body: &[u8], pairs: &[(&'static str, &str)]) -> Result<Verified, WebhookError> {
        verifier(SECRET).verify(body, &headers(pairs), NOW)
    }

    #[test]
    fn github_documented_example_verifies() {
        let v = check(PAYLOAD, &[(SIGNATURE_256, DOCUMENTED)]).unwrap();
        assert_eq!(v.provider, Provider::Github);
        assert_eq!(v.timestamp, None);
    }

    #[test]
    fn github_uppercase_hex_and_lowercase_header_name_verify() {
        let upper = format!("sha256={}", DOCUMENTED[7..].to_uppercase());
        assert!(check(PAYLOAD, &[("x-hub-signature-256", &upper)]).is_ok());
    }

    #[test]
    fn github_tampered_body_is_refused() {
        let err = check(b"Hello, World?", &[(SIGNATURE_256, DOCUMENTED)]).unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[test]
    fn github_wrong_secret_is_refused() {
        let err = verifier("another secret")
            .verify(PAYLOAD, &headers(&[(SIGNATURE_256, DOCUMENTED)]), NOW)
            .unwrap_err();
        assert_eq!(err.code(), "bad_signature");
    }

    #[test]
    fn github_truncated_signature_is_refused_as_malformed() {
        let short = &DOCUMENTED[..DOCUMENTED.len() - 2];
        let err = check(PAYLOAD, &[(SIGNATURE_256, short)]).unwrap_err();
        assert_eq!(err.code(), "malformed_header");
    }

    #[test]
    fn github_signature_without_sha256_prefix_is_refused() {
        let err = check(PAYLOAD, &[(SIGNATURE_256, &DOCUMENTED[7..])]).unwrap_err();
        assert_eq!(err.code(), "malformed_header");
    }

    #[test]
    fn github_sha1_only_request_is_refused() {
        let sha1 = "sha1=0123456789abcdef0123456789abcdef01234567";
        let err = check(PAYLOAD, &[(SIGNATURE_SHA1, sha1)]).unwrap_err();
        assert_eq!(err.code(), "sha1_only");
    }

    #[test]
    fn github_missing_signature_header_is_refused() {
        let err = check(PAYLOAD, &[]).unwrap_err();
        assert_eq!(err, WebhookError::MissingHeader(SIGNATURE_256.into()));
    }

    #[test]
    fn github_redelivery_of_the_same_payload_is_a_replay() {
        let mut guard = ReplayGuard::new(16, 300);
        let v = check(PAYLOAD, &[(SIGNATURE_256, DOCUMENTED)]).unwrap();
        assert_eq!(guard.admit(&v, NOW), Ok(()));
        let again = check(PAYLOAD, &[(SIGNATURE_256, DOCUMENTED)]).unwrap();
        assert_eq!(guard.admit(&again, NOW + 5), Err(WebhookError::Replayed));
    }
}
