//! Telegram Bot API: the `secret_token` given to `setWebhook` comes back
//! verbatim in `X-Telegram-Bot-Api-Secret-Token`.
//!
//! There is no signature over the body, only a shared token, so the one
//! decision is a constant-time equality. With nothing signed to derive a
//! replay key from, the key is a digest of the body: every Telegram update
//! carries a unique `update_id`, so two distinct updates never collide.
//! No timestamp is signed; replays are bounded by the caller's memory.

use super::error::WebhookError;
use super::headers::{required_header, HeaderLookup};
use super::provider::Provider;
use super::replay::ReplayKey;
use super::{Verified, Verifier};
use crate::clock::UnixTime;
use crate::secret::{constant_time_eq, SecretBytes};

pub(crate) const SECRET_TOKEN: &str = "X-Telegram-Bot-Api-Secret-Token";

#[derive(Debug, Clone)]
pub struct TelegramVerifier {
    secret_token: SecretBytes,
}

impl TelegramVerifier {
    /// Telegram accepts 1–256 characters from `A-Z a-z 0-9 _ -`; anything
    /// else could never be sent back to us, so it is a setup mistake.
    pub fn new(secret_token: SecretBytes) -> Result<Self, WebhookError> {
        let t = secret_token.expose();
        if t.is_empty() || t.len() > 256 {
            return Err(WebhookError::InvalidConfig(
                "secret token must be 1-256 characters",
            ));
        }
        if !t
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
        {
            return Err(WebhookError::InvalidConfig(
                "secret token has characters Telegram refuses",
            ));
        }
        Ok(Self { secret_token })
    }
}

impl Verifier for TelegramVerifier {
    fn provider(&self) -> Provider {
        Provider::Telegram
    }

    fn verify(
        &self,
        body: &[u8],
        headers: &dyn HeaderLookup,
        _now: UnixTime,
    ) -> Result<Verified, WebhookError> {
        let presented = required_header(headers, SECRET_TOKEN)?;
        if !constant_time_eq(self.secret_token.expose(), presented.as_bytes()) {
            return Err(WebhookError::BadSignature);
        }
        Ok(Verified {
            provider: Provider::Telegram,
            timestamp: None,
            replay_key: ReplayKey::derive(Provider::Telegram, None, body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::replay::ReplayGuard;
    use super::super::test_support::*;
    use super::*;

    const TOKEN: &str = "gh_Secret-Token_0123456789";
    const BODY: &str = r#"{"update_id":10000,"message":{"text":"hi"}}"#;

    fn check(body: &str, token: Option<&str>) -> Result<Verified, WebhookError> {
        let v = TelegramVerifier::new(SecretBytes::from_string(TOKEN.into())).unwrap();
        let h = match token {
            Some(t) => headers(&[(SECRET_TOKEN, t)]),
            None => headers(&[]),
        };
        v.verify(body.as_bytes(), &h, NOW)
    }

    #[test]
    fn telegram_matching_secret_token_verifies() {
        let v = check(BODY, Some(TOKEN)).unwrap();
        assert_eq!(v.provider, Provider::Telegram);
        assert_eq!(v.timestamp, None);
    }

    #[test]
    fn telegram_wrong_token_is_refused() {
        let err = check(BODY, Some("gh_Secret-Token_0123456780")).unwrap_err();
        assert_eq!(err, WebhookError::BadSignature);
    }

    #[test]
    fn telegram_truncated_or_case_changed_token_is_refused() {
        assert_eq!(
            check(BODY, Some(&TOKEN[..10])).unwrap_err().code(),
            "bad_signature"
        );
        let upper = TOKEN.to_uppercase();
        assert_eq!(
            check(BODY, Some(&upper)).unwrap_err().code(),
            "bad_signature"
        );
        assert_eq!(check(BODY, Some("")).unwrap_err().code(), "bad_signature");
    }

    #[test]
    fn telegram_missing_header_is_refused() {
        let err = check(BODY, None).unwrap_err();
        assert_eq!(err, WebhookError::MissingHeader(SECRET_TOKEN.into()));
    }

    #[test]
    fn telegram_replay_of_the_same_update_is_refused_and_others_pass() {
        let mut guard = ReplayGuard::new(16, 300);
        let first = check(BODY, Some(TOKEN)).unwrap();
        assert!(guard.admit(&first, NOW).is_ok());
        assert_eq!(guard.admit(&first, NOW + 1), Err(WebhookError::Replayed));
        let next = check(r#"{"update_id":10001}"#, Some(TOKEN)).unwrap();
        assert!(guard.admit(&next, NOW + 1).is_ok());
    }

    #[test]
    fn telegram_tokens_telegram_would_refuse_are_a_setup_error() {
        for bad in ["", "has space", "slash/", &"a".repeat(257)] {
            let err = TelegramVerifier::new(SecretBytes::from_string(bad.to_string())).unwrap_err();
            assert_eq!(err.code(), "invalid_config", "{bad:?}");
        }
    }
}
