//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`,
//! HMAC-SHA256 under the endpoint secret of `{t}.{body}`.
//!
//! Stripe sends several `v1` values while an endpoint secret is being
//! rolled, so any one of them may match. Other schemes (`v0`, future ones)
//! are ignored, never verified: only `v1` is HMAC-SHA256. The parser is
//! strict about shape (one `t`, `key=value` items) because a header that
//! parses two ways is one an attacker can make parse the wrong way.

use super::error::WebhookError;
use super::freshness::check_freshness;
use super::headers::{prefixed_hex, required_header, unix_seconds, HeaderLookup};
use super::mac::{hmac_sha256, mac_matches, require_secret};
use super::provider::Provider;
use super::replay::ReplayKey;
use super::{Verified, Verifier};
use crate::clock::UnixTime;
use crate::secret::SecretBytes;

pub(crate) const SIGNATURE: &str = "Stripe-Signature";

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSignatureHeader<'a> {
    /// `t` exactly as sent: it is signed as text, not as a number.
    pub timestamp_text: &'a str,
    pub timestamp: UnixTime,
    /// Every `v1` that is 64 hex digits; any other `v1` could never match.
    pub v1: Vec<[u8; 32]>,
}

impl<'a> StripeSignatureHeader<'a> {
    /// Parses the header value; the error is a short reason.
    pub fn parse(value: &'a str) -> Result<Self, &'static str> {
        let mut timestamp: Option<(&str, UnixTime)> = None;
        let mut v1 = Vec::new();
        for item in value.split(',') {
            let (key, val) = item.trim().split_once('=').ok_or("item without '='")?;
            match key {
                "t" => {
                    if timestamp.is_some() {
                        return Err("more than one t");
                    }
                    let t = unix_seconds(val).ok_or("t is not unix seconds")?;
                    timestamp = Some((val, t));
                }
                "v1" => v1.extend(prefixed_hex::<32>(val, "")),
                "" => return Err("item without a key"),
                _ => {}
            }
        }
        let (timestamp_text, timestamp) = timestamp.ok_or("no t")?;
        if v1.is_empty() {
            return Err("no usable v1 signature");
        }
        Ok(Self {
            timestamp_text,
            timestamp,
            v1,
        })
    }
}

#[derive(Debug, Clone)]
pub struct StripeVerifier {
    endpoint_secret: SecretBytes,
}

impl StripeVerifier {
    /// `endpoint_secret` is the `whsec_…` string, used as the HMAC key
    /// as-is (Stripe does not decode it).
    pub fn new(endpoint_secret: SecretBytes) -> Result<Self, WebhookError> {
        require_secret(&endpoint_secret)?;
        Ok(Self { endpoint_secret })
    }
}

impl Verifier for StripeVerifier {
    fn provider(&self) -> Provider {
        Provider::Stripe
    }

    fn verify(
        &self,
        body: &[u8],
        headers: &dyn HeaderLookup,
        now: UnixTime,
    ) -> Result<Verified, WebhookError> {
        let value = required_header(headers, SIGNATURE)?;
        let parsed = StripeSignatureHeader::parse(value)
            .map_err(|reason| WebhookError::malformed(SIGNATURE, reason))?;
        let expected = hmac_sha256(
            &self.endpoint_secret,
            &[parsed.timestamp_text.as_bytes(), b".", body],
        )?;
        // No early exit: every candidate is compared.
        let matched = parsed
            .v1
            .iter()
            .fold(false, |any, sig| any | mac_matches(&expected, sig));
        if !matched {
            return Err(WebhookError::BadSignature);
        }
        check_freshness(parsed.timestamp, now)?;
        Ok(Verified {
            provider: Provider::Stripe,
            timestamp: Some(parsed.timestamp),
            replay_key: ReplayKey::derive(Provider::Stripe, Some(parsed.timestamp), &expected),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::replay::ReplayGuard;
    use super::super::test_support::*;
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &str = r#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;
    /// HMAC-SHA256("whsec_test_secret", "1531420618." + BODY), computed
    /// independently with Python's hmac module.
    const V1: &str = "c46037143c5584c1aefb70ecd4387c30007e2bbe4967f5a1cc132dba0b7eb420";
    const OTHER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn check(body: &str, header: &str, now: UnixTime) -> Result<Verified, WebhookError> {
        let v = StripeVerifier::new(SecretBytes::from_string(SECRET.into())).unwrap();
        v.verify(body.as_bytes(), &headers(&[(SIGNATURE, header)]), now)
    }

    fn signed(ts: i64) -> String {
        let v1 = hmac_hex(SECRET.as_bytes(), format!("{ts}.{BODY}").as_bytes());
        format!("t={ts},v1={v1}")
    }

    #[test]
    fn stripe_known_answer_verifies() {
        let v = check(BODY, &format!("t={NOW},v1={V1}"), NOW).unwrap();
        assert_eq!(v.timestamp, Some(NOW));
        assert_eq!(signed(NOW), format!("t={NOW},v1={V1}"));
    }

    #[test]
    fn stripe_any_of_several_v1_may_match_and_v0_is_ignored() {
        let h = format!("t={NOW}, v1={OTHER}, v1={V1}, v0={OTHER}, v9=x");
        assert!(check(BODY, &h, NOW).is_ok());
        // The right one twice is still a match, not a cancellation.
        let h = format!("t={NOW},v1={V1},v1={V1}");
        assert!(check(BODY, &h, NOW).is_ok());
    }

    #[test]
    fn stripe_v0_alone_is_not_accepted() {
        let err = check(BODY, &format!("t={NOW},v0={V1}"), NOW).unwrap_err();
        assert_eq!(err.code(), "malformed_header");
    }

    #[test]
    fn stripe_tampered_body_is_refused() {
        let err = check(r#"{"id":"evt_2"}"#, &signed(NOW), NOW).unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[test]
    fn stripe_wrong_secret_is_refused() {
        let v = StripeVerifier::new(SecretBytes::from_string("whsec_other".into())).unwrap();
        let err = v
            .verify(BODY.as_bytes(), &headers(&[(SIGNATURE, &signed(NOW))]), NOW)
            .unwrap_err();
        assert_eq!(err.code(), "bad_signature");
    }

    #[test]
    fn stripe_truncated_signature_is_refused() {
        let h = format!("t={NOW},v1={}", &V1[..63]);
        assert_eq!(check(BODY, &h, NOW).unwrap_err().code(), "malformed_header");
        let h = format!("t={NOW},v1={OTHER},v1={}", &V1[..62]);
        assert_eq!(check(BODY, &h, NOW).unwrap_err().code(), "bad_signature");
    }

    #[test]
    fn stripe_missing_or_malformed_header_is_refused() {
        let v = StripeVerifier::new(SecretBytes::from_string(SECRET.into())).unwrap();
        let err = v.verify(BODY.as_bytes(), &headers(&[]), NOW).unwrap_err();
        assert_eq!(err, WebhookError::MissingHeader(SIGNATURE.into()));
        for bad in [
            format!("v1={V1}"),
            format!("t={NOW},t={NOW},v1={V1}"),
            format!("t={NOW},v1={V1},"),
            format!("t={NOW},=x,v1={V1}"),
            format!("t=-5,v1={V1}"),
            format!("t={NOW};v1={V1}"),
        ] {
            assert_eq!(
                check(BODY, &bad, NOW).unwrap_err().code(),
                "malformed_header",
                "{bad}"
            );
        }
    }

    #[test]
    fn stripe_signature_older_than_300s_is_refused() {
        assert!(check(BODY, &signed(NOW - 300), NOW).is_ok());
        let err = check(BODY, &signed(NOW - 301), NOW).unwrap_err();
        assert_eq!(err.code(), "stale");
    }

    #[test]
    fn stripe_signature_more_than_300s_in_the_future_is_refused() {
        let err = check(BODY, &signed(NOW + 301), NOW).unwrap_err();
        assert_eq!(err.code(), "future");
    }

    #[test]
    fn stripe_replay_with_reordered_header_is_still_a_replay() {
        let mut guard = ReplayGuard::new(16, 300);
        let first = check(BODY, &format!("t={NOW},v1={V1}"), NOW).unwrap();
        assert!(guard.admit(&first, NOW).is_ok());
        let reordered = check(BODY, &format!("v1={OTHER},v1={V1},t={NOW}"), NOW + 1).unwrap();
        assert_eq!(
            guard.admit(&reordered, NOW + 1),
            Err(WebhookError::Replayed)
        );
    }

    proptest! {
        #[test]
        fn stripe_header_parser_never_panics(s in "\\PC{0,300}") {
            let _ = StripeSignatureHeader::parse(&s);
        }

        #[test]
        fn stripe_header_parser_never_panics_on_near_valid_input(
            s in "(t=[0-9]{0,14}|v1=[0-9a-fA-F]{0,66}|v0=[a-z]{0,3}|=|,| ){0,12}"
        ) {
            if let Ok(h) = StripeSignatureHeader::parse(&s) {
                prop_assert!(!h.v1.is_empty());
            }
        }
    }
}
