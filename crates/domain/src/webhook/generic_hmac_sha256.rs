//! Generic HMAC-SHA256: one configurable header carrying an optional
//! prefix and the hex HMAC-SHA256 of the raw body (by default
//! `X-Signature: sha256=<hex>`).
//!
//! For senders that follow no named scheme. Nothing is timestamped, so
//! this is the weakest provider: replays are bounded only by the caller's
//! memory. The header name and prefix are checked at setup so a typo
//! cannot turn into a header that never matches, or one that reads an
//! unrelated value.

use super::error::WebhookError;
use super::headers::{prefixed_hex, required_header, HeaderLookup};
use super::mac::{hmac_sha256, mac_matches, require_secret};
use super::provider::Provider;
use super::replay::ReplayKey;
use super::{Verified, Verifier};
use crate::clock::UnixTime;
use crate::secret::SecretBytes;

pub const DEFAULT_HEADER: &str = "X-Signature";
pub const DEFAULT_PREFIX: &str = "sha256=";

#[derive(Debug, Clone)]
pub struct GenericHmacSha256Verifier {
    secret: SecretBytes,
    header: String,
    prefix: String,
}

impl GenericHmacSha256Verifier {
    /// `header` must be an HTTP token of at most 64 characters; `prefix`
    /// printable ASCII of at most 32 (it may be empty).
    pub fn new(secret: SecretBytes, header: &str, prefix: &str) -> Result<Self, WebhookError> {
        require_secret(&secret)?;
        let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if header.is_empty() || header.len() > 64 || !header.bytes().all(token_char) {
            return Err(WebhookError::InvalidConfig(
                "header name is not an HTTP token",
            ));
        }
        if prefix.len() > 32 || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(WebhookError::InvalidConfig("prefix is not printable ASCII"));
        }
        Ok(Self {
            secret,
            header: header.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// `X-Signature: sha256=<hex>`.
    pub fn with_defaults(secret: SecretBytes) -> Result<Self, WebhookError> {
        Self::new(secret, DEFAULT_HEADER, DEFAULT_PREFIX)
    }
}

impl Verifier for GenericHmacSha256Verifier {
    fn provider(&self) -> Provider {
        Provider::GenericHmacSha256
    }

    fn verify(
        &self,
        body: &[u8],
        headers: &dyn HeaderLookup,
        _now: UnixTime,
    ) -> Result<Verified, WebhookError> {
        let value = required_header(headers, &self.header)?;
        let presented = prefixed_hex::<32>(value, &self.prefix)
            .ok_or_else(|| WebhookError::malformed(&self.header, "not prefix and 64 hex digits"))?;
        let expected = hmac_sha256(&self.secret, &[body])?;
        if !mac_matches(&expected, &presented) {
            return Err(WebhookError::BadSignature);
        }
        Ok(Verified {
            provider: Provider::GenericHmacSha256,
            timestamp: None,
            replay_key: ReplayKey::derive(Provider::GenericHmacSha256, None, &expected),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::replay::ReplayGuard;
    use super::super::test_support::*;
    use super::*;

    const SECRET: &str = "generic-shared-secret";
    const BODY: &str = r#"{"event":"build.finished"}"#;
    /// HMAC-SHA256(SECRET, BODY), computed independently with Python.
    const DIGEST: &str = "4f70f31bf49415f3d6f2441e4f0e6ba25564b60405592323e6f2a43e76f74d7a";

    fn verifier(secret: &str) -> GenericHmacSha256Verifier {
        GenericHmacSha256Verifier::with_defaults(SecretBytes::from_string(secret.into())).unwrap()
    }

    fn check(body: &str, pairs: &[(&'static str, &str)]) -> Result<Verified, WebhookError> {
        verifier(SECRET).verify(body.as_bytes(), &headers(pairs), NOW)
    }

    #[test]
    fn generic_known_answer_verifies_with_default_header_and_prefix() {
        let sig = format!("sha256={DIGEST}");
        assert_eq!(
            sig,
            format!("sha256={}", hmac_hex(SECRET.as_bytes(), BODY.as_bytes()))
        );
        let v = check(BODY, &[("x-signature", &sig)]).unwrap();
        assert_eq!(v.provider, Provider::GenericHmacSha256);
    }

    #[test]
    fn generic_custom_header_and_empty_prefix_verify() {
        let secret = SecretBytes::from_string(SECRET.into());
        let v = GenericHmacSha256Verifier::new(secret, "X-Acme-Hmac", "").unwrap();
        let h = headers(&[("X-Acme-Hmac", DIGEST)]);
        assert!(v.verify(BODY.as_bytes(), &h, NOW).is_ok());
        let wrong_header = headers(&[("X-Signature", DIGEST)]);
        let err = v.verify(BODY.as_bytes(), &wrong_header, NOW).unwrap_err();
        assert_eq!(err, WebhookError::MissingHeader("X-Acme-Hmac".into()));
    }

    #[test]
    fn generic_tampered_body_is_refused() {
        let err = check(
            r#"{"event":"build.failed"}"#,
            &[("X-Signature", &format!("sha256={DIGEST}"))],
        );
        assert_eq!(err.unwrap_err(), WebhookError::BadSignature);
    }

    #[test]
    fn generic_wrong_secret_is_refused() {
        let h = headers(&[("X-Signature", &format!("sha256={DIGEST}"))]);
        let err = verifier("other-secret")
            .verify(BODY.as_bytes(), &h, NOW)
            .unwrap_err();
        assert_eq!(err.code(), "bad_signature");
    }

    #[test]
    fn generic_truncated_or_unprefixed_signature_is_refused() {
        let short = format!("sha256={}", &DIGEST[..62]);
        assert_eq!(
            check(BODY, &[("X-Signature", &short)]).unwrap_err().code(),
            "malformed_header"
        );
        assert_eq!(
            check(BODY, &[("X-Signature", DIGEST)]).unwrap_err().code(),
            "malformed_header"
        );
    }

    #[test]
    fn generic_missing_header_is_refused() {
        let err = check(BODY, &[]).unwrap_err();
        assert_eq!(err, WebhookError::MissingHeader(DEFAULT_HEADER.into()));
    }

    #[test]
    fn generic_replay_is_refused_by_the_guard() {
        let mut guard = ReplayGuard::new(16, 300);
        let v = check(BODY, &[("X-Signature", &format!("sha256={DIGEST}"))]).unwrap();
        assert!(guard.admit(&v, NOW).is_ok());
        assert_eq!(guard.admit(&v, NOW + 60), Err(WebhookError::Replayed));
    }

    #[test]
    fn generic_bad_header_names_and_prefixes_are_a_setup_error() {
        let s = || SecretBytes::from_string(SECRET.into());
        for (header, prefix) in [
            ("", ""),
            ("X Sig", ""),
            ("X:Sig", ""),
            ("X-Sig", "sha 256="),
            ("X-Sig", "é"),
        ] {
            let err = GenericHmacSha256Verifier::new(s(), header, prefix).unwrap_err();
            assert_eq!(err.code(), "invalid_config", "{header:?} {prefix:?}");
        }
    }
}
