//! Discord interactions: Ed25519 over `{X-Signature-Timestamp}{body}`,
//! signature in `X-Signature-Ed25519` (hex), key = the application's
//! public key (hex).
//!
//! Verification is `verify_strict`: non-canonical signatures and weak
//! (small-order) keys are refused, so a signature has one valid encoding
//! and the replay key derived from it cannot be varied by re-encoding.
//! The timestamp is signed, so after the signature matches it is held to
//! the 300 s window like Slack's and Stripe's.

use ed25519_dalek::{Signature, VerifyingKey};

use super::error::WebhookError;
use super::freshness::check_freshness;
use super::headers::{prefixed_hex, required_header, unix_seconds, HeaderLookup};
use super::provider::Provider;
use super::replay::ReplayKey;
use super::{Verified, Verifier};
use crate::clock::UnixTime;

pub(crate) const SIGNATURE: &str = "X-Signature-Ed25519";
pub(crate) const TIMESTAMP: &str = "X-Signature-Timestamp";

#[derive(Debug, Clone)]
pub struct DiscordVerifier {
    public_key: VerifyingKey,
}

impl DiscordVerifier {
    /// The key as shown in the Discord developer portal: 64 hex digits.
    pub fn from_public_key_hex(hex: &str) -> Result<Self, WebhookError> {
        let bytes = prefixed_hex::<32>(hex.trim(), "").ok_or(WebhookError::InvalidConfig(
            "public key is not 64 hex digits",
        ))?;
        let public_key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| WebhookError::InvalidConfig("public key is not an Ed25519 point"))?;
        if public_key.is_weak() {
            return Err(WebhookError::InvalidConfig("public key is weak"));
        }
        Ok(Self { public_key })
    }
}

impl Verifier for DiscordVerifier {
    fn provider(&self) -> Provider {
        Provider::Discord
    }

    fn verify(
        &self,
        body: &[u8],
        headers: &dyn HeaderLookup,
        now: UnixTime,
    ) -> Result<Verified, WebhookError> {
        let ts_text = required_header(headers, TIMESTAMP)?;
        let sig_hex = required_header(headers, SIGNATURE)?;
        let ts = unix_seconds(ts_text)
            .ok_or_else(|| WebhookError::malformed(TIMESTAMP, "not unix seconds"))?;
        let sig_bytes = prefixed_hex::<64>(sig_hex, "")
            .ok_or_else(|| WebhookError::malformed(SIGNATURE, "not 128 hex digits"))?;
        let signature = Signature::from_bytes(&sig_bytes);
        let mut message = Vec::with_capacity(ts_text.len() + body.len());
        message.extend_from_slice(ts_text.as_bytes());
        message.extend_from_slice(body);
        self.public_key
            .verify_strict(&message, &signature)
            .map_err(|_| WebhookError::BadSignature)?;
        check_freshness(ts, now)?;
        Ok(Verified {
            provider: Provider::Discord,
            timestamp: Some(ts),
            replay_key: ReplayKey::derive(Provider::Discord, Some(ts), &sig_bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::replay::ReplayGuard;
    use super::super::test_support::*;
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const BODY: &str = r#"{"type":1,"id":"1234","application_id":"5678"}"#;

    fn verifier() -> DiscordVerifier {
        DiscordVerifier::from_public_key_hex(&discord_public_key_hex()).unwrap()
    }

    fn sign_with(key: &SigningKey, ts: &str, body: &str) -> String {
        hex::encode(key.sign(format!("{ts}{body}").as_bytes()).to_bytes())
    }

    fn sign(ts: i64, body: &str) -> String {
        sign_with(&discord_signing_key(), &ts.to_string(), body)
    }

    fn check(body: &str, ts: &str, sig: &str, now: UnixTime) -> Result<Verified, WebhookError> {
        verifier().verify(
            body.as_bytes(),
            &headers(&[(TIMESTAMP, ts), (SIGNATURE, sig)]),
            now,
        )
    }

    #[test]
    fn discord_signature_from_the_app_key_verifies() {
        let v = check(BODY, &NOW.to_string(), &sign(NOW, BODY), NOW).unwrap();
        assert_eq!(v.provider, Provider::Discord);
        assert_eq!(v.timestamp, Some(NOW));
    }

    #[test]
    fn discord_known_answer_computed_independently_verifies() {
        // Key [7; 32] and this signature come from Python's `cryptography`
        // package, not from the signer used elsewhere in these tests.
        const PUBLIC_KEY: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
        const SIG: &str = "dd26b101b7257132a9a17a9510fc05e1b713743b98026067d4abcdd102db186c\
                           1b5be4946a5402ce0a50add14bd2edf6d66119f191e64118ff6a0f10ed378902";
        assert_eq!(discord_public_key_hex(), PUBLIC_KEY);
        let v = DiscordVerifier::from_public_key_hex(PUBLIC_KEY).unwrap();
        let h = headers(&[(TIMESTAMP, "1531420618"), (SIGNATURE, SIG)]);
        assert!(v.verify(BODY.as_bytes(), &h, NOW).is_ok());
    }

    #[test]
    fn discord_tampered_body_is_refused() {
        let err = check(r#"{"type":2}"#, &NOW.to_string(), &sign(NOW, BODY), NOW).unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[test]
    fn discord_signature_from_another_key_is_refused() {
        let other = SigningKey::from_bytes(&[8; 32]);
        let sig = sign_with(&other, &NOW.to_string(), BODY);
        let err = check(BODY, &NOW.to_string(), &sig, NOW).unwrap_err();
        assert_eq!(err.code(), "bad_signature");
    }

    #[test]
    fn discord_truncated_signature_is_refused() {
        let sig = sign(NOW, BODY);
        let err = check(BODY, &NOW.to_string(), &sig[..126], NOW).unwrap_err();
        assert_eq!(err.code(), "malformed_header");
    }

    #[test]
    fn discord_non_canonical_signature_is_refused() {
        // Adding the group order L to S gives a signature that lax
        // verifiers accept for the same message; verify_strict must not.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut sig = hex::decode(sign(NOW, BODY)).unwrap();
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
            sig[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        let err = check(BODY, &NOW.to_string(), &hex::encode(sig), NOW).unwrap_err();
        assert_eq!(err.code(), "bad_signature");
    }

    #[test]
    fn discord_missing_headers_are_refused() {
        let v = verifier();
        let sig = sign(NOW, BODY);
        let e1 = v
            .verify(BODY.as_bytes(), &headers(&[(SIGNATURE, &sig)]), NOW)
            .unwrap_err();
        let e2 = v
            .verify(BODY.as_bytes(), &headers(&[(TIMESTAMP, "1")]), NOW)
            .unwrap_err();
        assert_eq!(e1, WebhookError::MissingHeader(TIMESTAMP.into()));
        assert_eq!(e2, WebhookError::MissingHeader(SIGNATURE.into()));
    }

    #[test]
    fn discord_signature_older_than_300s_is_refused() {
        let ts = NOW - 301;
        let err = check(BODY, &ts.to_string(), &sign(ts, BODY), NOW).unwrap_err();
        assert_eq!(err.code(), "stale");
    }

    #[test]
    fn discord_signature_more_than_300s_in_the_future_is_refused() {
        let ts = NOW + 301;
        let err = check(BODY, &ts.to_string(), &sign(ts, BODY), NOW).unwrap_err();
        assert_eq!(err.code(), "future");
    }

    #[test]
    fn discord_replayed_interaction_is_refused_by_the_guard() {
        let mut guard = ReplayGuard::new(16, 300);
        let sig = sign(NOW, BODY);
        let first = check(BODY, &NOW.to_string(), &sig, NOW).unwrap();
        assert!(guard.admit(&first, NOW).is_ok());
        let copy = check(BODY, &NOW.to_string(), &sig.to_uppercase(), NOW + 2).unwrap();
        assert_eq!(guard.admit(&copy, NOW + 2), Err(WebhookError::Replayed));
    }

    #[test]
    fn discord_public_keys_that_are_not_valid_points_are_refused() {
        for bad in ["", "zz", &"00".repeat(31), &"0".repeat(64)] {
            let err = DiscordVerifier::from_public_key_hex(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_config", "{bad:?}");
        }
    }
}
