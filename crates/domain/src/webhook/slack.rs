//! Slack: `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 under the signing
//! secret of `v0:{X-Slack-Request-Timestamp}:{body}`.
//!
//! The timestamp is part of the signed string, so it can be trusted once
//! the signature matches; it is then held to the 300 s window. The
//! signature is checked first so that `stale` and `future` in the audit log
//! always describe a genuine Slack delivery, never a forgery.

use super::error::WebhookError;
use super::freshness::check_freshness;
use super::headers::{prefixed_hex, required_header, unix_seconds, HeaderLookup};
use super::mac::{hmac_sha256, mac_matches, require_secret};
use super::provider::Provider;
use super::replay::ReplayKey;
use super::{Verified, Verifier};
use crate::clock::UnixTime;
use crate::secret::SecretBytes;

pub(crate) const SIGNATURE: &str = "X-Slack-Signature";
pub(crate) const TIMESTAMP: &str = "X-Slack-Request-Timestamp";

#[derive(Debug, Clone)]
pub struct SlackVerifier {
    signing_secret: SecretBytes,
}

impl SlackVerifier {
    pub fn new(signing_secret: SecretBytes) -> Result<Self, WebhookError> {
        require_secret(&signing_secret)?;
        Ok(Self { signing_secret })
    }
}

impl Verifier for SlackVerifier {
    fn provider(&self) -> Provider {
        Provider::Slack
    }

    fn verify(
        &self,
        body: &[u8],
        headers: &dyn HeaderLookup,
        now: UnixTime,
    ) -> Result<Verified, WebhookError> {
        let ts_text = required_header(headers, TIMESTAMP)?;
        let signature = required_header(headers, SIGNATURE)?;
        let ts = unix_seconds(ts_text)
            .ok_or_else(|| WebhookError::malformed(TIMESTAMP, "not unix seconds"))?;
        let presented = prefixed_hex::<32>(signature, "v0=")
            .ok_or_else(|| WebhookError::malformed(SIGNATURE, "not v0= and 64 hex digits"))?;
        let expected = hmac_sha256(
            &self.signing_secret,
            &[b"v0:", ts_text.as_bytes(), b":", body],
        )?;
        if !mac_matches(&expected, &presented) {
            return Err(WebhookError::BadSignature);
        }
        check_freshness(ts, now)?;
        Ok(Verified {
            provider: Provider::Slack,
            timestamp: Some(ts),
            replay_key: ReplayKey::derive(Provider::Slack, Some(ts), &expected),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::replay::ReplayGuard;
    use super::super::test_support::*;
    use super::*;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const DOCUMENTED: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn verifier(secret: &str) -> SlackVerifier {
        SlackVerifier::new(SecretBytes::from_string(secret.to_string())).unwrap()
    }

    fn check_at(body: &str, ts: &str, sig: &str, now: UnixTime) -> Result<Verified, WebhookError> {
        let h = headers(&[(TIMESTAMP, ts), (SIGNATURE, sig)]);
        verifier(SECRET).verify(body.as_bytes(), &h, now)
    }

    fn sign(ts: i64, body: &str) -> String {
        format!(
            "v0={}",
            hmac_hex(SECRET.as_bytes(), format!("v0:{ts}:{body}").as_bytes())
        )
    }

    #[test]
    fn slack_documented_example_verifies() {
        let v = check_at(BODY, TS, DOCUMENTED, NOW).unwrap();
        assert_eq!(v.provider, Provider::Slack);
        assert_eq!(v.timestamp, Some(1_531_420_618));
    }

    #[test]
    fn slack_tampered_body_is_refused() {
        let tampered = BODY.replace("roadrunner", "wile_e_coyote");
        let err = check_at(&tampered, TS, DOCUMENTED, NOW).unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[test]
    fn slack_changed_timestamp_breaks_the_signature() {
        let err = check_at(BODY, "1531420619", DOCUMENTED, NOW).unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[test]
    fn slack_wrong_signing_secret_is_refused() {
        let h = headers(&[(TIMESTAMP, TS), (SIGNATURE, DOCUMENTED)]);
        let err = verifier("8f742231b10e8888abcd99yyyzzz85a6")
            .verify(BODY.as_bytes(), &h, NOW)
            .unwrap_err();
        assert_eq!(err.code(), "bad_signature");
    }

    #[test]
    fn slack_truncated_signature_is_refused() {
        let err = check_at(BODY, TS, &DOCUMENTED[..60], NOW).unwrap_err();
        assert_eq!(err.code(), "malformed_header");
    }

    #[test]
    fn slack_missing_headers_are_refused() {
        let v = verifier(SECRET);
        let only_sig = headers(&[(SIGNATURE, DOCUMENTED)]);
        let only_ts = headers(&[(TIMESTAMP, TS)]);
        let e1 = v.verify(BODY.as_bytes(), &only_sig, NOW).unwrap_err();
        let e2 = v.verify(BODY.as_bytes(), &only_ts, NOW).unwrap_err();
        assert_eq!(e1, WebhookError::MissingHeader(TIMESTAMP.into()));
        assert_eq!(e2, WebhookError::MissingHeader(SIGNATURE.into()));
    }

    #[test]
    fn slack_non_numeric_timestamp_is_malformed() {
        let err = check_at(BODY, "-1531420618", DOCUMENTED, NOW).unwrap_err();
        assert_eq!(err.code(), "malformed_header");
    }

    #[test]
    fn slack_signature_older_than_300s_is_refused() {
        assert!(check_at(BODY, TS, DOCUMENTED, NOW + 300).is_ok());
        let err = check_at(BODY, TS, DOCUMENTED, NOW + 301).unwrap_err();
        assert_eq!(err, WebhookError::Stale { skew_secs: 301 });
    }

    #[test]
    fn slack_signature_more_than_300s_in_the_future_is_refused() {
        let ts = NOW + 301;
        let err = check_at(BODY, &ts.to_string(), &sign(ts, BODY), NOW).unwrap_err();
        assert_eq!(err.code(), "future");
        let ts = NOW + 300;
        assert!(check_at(BODY, &ts.to_string(), &sign(ts, BODY), NOW).is_ok());
    }

    #[test]
    fn slack_replayed_request_is_refused_by_the_guard() {
        let mut guard = ReplayGuard::new(16, 300);
        let first = check_at(BODY, TS, DOCUMENTED, NOW).unwrap();
        assert!(guard.admit(&first, NOW).is_ok());
        let copy = check_at(
            BODY,
            TS,
            &DOCUMENTED.to_uppercase().replace("V0=", "v0="),
            NOW + 10,
        );
        assert_eq!(
            guard.admit(&copy.unwrap(), NOW + 10),
            Err(WebhookError::Replayed)
        );
    }
}
