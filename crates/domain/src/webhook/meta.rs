//! Meta (WhatsApp Cloud API, Messenger, Instagram): `X-Hub-Signature-256:
//! sha256=<hex>`, HMAC-SHA256 of the raw body under the app secret.
//!
//! The scheme is GitHub's, so it shares GitHub's code and its refusal of
//! SHA-1-only requests; this type exists so Meta hooks are audited under
//! their own provider name and replay keys never collide with GitHub's.

use super::error::WebhookError;
use super::github::verify_hub_signature;
use super::headers::HeaderLookup;
use super::mac::require_secret;
use super::provider::Provider;
use super::{Verified, Verifier};
use crate::clock::UnixTime;
use crate::secret::SecretBytes;

#[derive(Debug, Clone)]
pub struct MetaVerifier {
    app_secret: SecretBytes,
}

impl MetaVerifier {
    pub fn new(app_secret: SecretBytes) -> Result<Self, WebhookError> {
        require_secret(&app_secret)?;
        Ok(Self { app_secret })
    }
}

impl Verifier for MetaVerifier {
    fn provider(&self) -> Provider {
        Provider::Meta
    }

    fn verify(
        &self,
        body: &[u8],
        headers: &dyn HeaderLookup,
        _now: UnixTime,
    ) -> Result<Verified, WebhookError> {
        verify_hub_signature(Provider::Meta, &self.app_secret, body, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::github::{SIGNATURE_256, SIGNATURE_SHA1};
    use super::super::replay::ReplayGuard;
    use super::super::test_support::*;
    use super::*;

    const APP_SECRET: &str = "6f1b2c3d4e5f60718293a4b5c6d7e8f9";
    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[{"id":"1"}]}"#;

    fn verifier(secret: &str) -> MetaVerifier {
        MetaVerifier::new(SecretBytes::from_string(secret.to_string())).unwrap()
    }

    fn signature(body: &[u8]) -> String {
        format!("sha256={}", hmac_hex(APP_SECRET.as_bytes(), body))
    }

    fn check(body: &[u8], pairs: &[(&'static str, &str)]) -> Result<Verified, WebhookError> {
        verifier(APP_SECRET).verify(body, &headers(pairs), NOW)
    }

    #[test]
    fn meta_signature_computed_with_the_app_secret_verifies() {
        // Computed independently (Python hmac) from the constants above.
        let sig = "sha256=52c4da004d3631eb090a65696b1ea06d5f4832bb799d8dc0345e009b7780d72f";
        assert_eq!(sig, signature(BODY));
        let v = check(BODY, &[(SIGNATURE_256, sig)]).unwrap();
        assert_eq!(v.provider, Provider::Meta);
    }

    #[test]
    fn meta_tampered_body_is_refused() {
        let sig = signature(BODY);
        let err = check(br#"{"object":"page"}"#, &[(SIGNATURE_256, &sig)]).unwrap_err();
        assert_eq!(err.code(), "bad_signature");
    }

    #[test]
    fn meta_wrong_app_secret_is_refused() {
        let sig = signature(BODY);
        let err = verifier("not-the-app-secret")
            .verify(BODY, &headers(&[(SIGNATURE_256, &sig)]), NOW)
            .unwrap_err();
        assert_eq!(err.code(), "bad_signature");
    }

    #[test]
    fn meta_truncated_signature_is_refused() {
        let sig = signature(BODY);
        let err = check(BODY, &[(SIGNATURE_256, &sig[..40])]).unwrap_err();
        assert_eq!(err.code(), "malformed_header");
    }

    #[test]
    fn meta_sha1_only_and_missing_headers_are_refused() {
        let sha1 = "sha1=0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            check(BODY, &[(SIGNATURE_SHA1, sha1)]).unwrap_err().code(),
            "sha1_only"
        );
        assert_eq!(check(BODY, &[]).unwrap_err().code(), "missing_header");
    }

    #[test]
    fn meta_replay_key_differs_from_github_for_the_same_signature() {
        let sig = signature(BODY);
        let meta = check(BODY, &[(SIGNATURE_256, &sig)]).unwrap();
        let github = super::super::GithubVerifier::new(SecretBytes::from_string(APP_SECRET.into()))
            .unwrap()
            .verify(BODY, &headers(&[(SIGNATURE_256, &sig)]), NOW)
            .unwrap();
        assert_ne!(meta.replay_key, github.replay_key);
        let mut guard = ReplayGuard::new(16, 300);
        assert!(guard.admit(&meta, NOW).is_ok());
        assert_eq!(guard.admit(&meta, NOW + 1), Err(WebhookError::Replayed));
    }
}
