//! Inbound webhook signature verification (SPEC §9).
//!
//! Decides whether a delivery really comes from the provider it names. The
//! signature is checked over the raw body bytes exactly as received, before
//! anything parses them, and every digest, signature or token is compared
//! in constant time. Providers that sign a timestamp (Slack, Stripe,
//! Discord) are also held to a 300 s window in both directions, so a
//! captured delivery cannot be replayed later, nor one pre-signed with a
//! future date held back for later use.
//!
//! A success carries the verified timestamp and a [`ReplayKey`]; the caller
//! feeds both to a [`ReplayGuard`] so the same delivery is refused a second
//! time inside the window. Everything here is pure: callers hand in the
//! body, a [`HeaderLookup`], the secret and the clock reading. Errors carry
//! a short stable code for the audit log and never the secret.

mod discord;
mod error;
mod forwarding;
mod freshness;
mod generic_hmac_sha256;
mod github;
mod headers;
mod mac;
mod meta;
mod provider;
mod replay;
mod slack;
mod stripe;
mod telegram;
#[cfg(test)]
mod test_support;

pub use discord::DiscordVerifier;
pub use error::WebhookError;
pub use forwarding::{is_forwarded, provider_headers};
pub use freshness::{check_freshness, MAX_SKEW_SECS};
pub use generic_hmac_sha256::GenericHmacSha256Verifier;
pub use github::GithubVerifier;
pub use headers::{HeaderLookup, MAX_HEADER_BYTES};
pub use meta::MetaVerifier;
pub use provider::{Provider, UnknownProvider};
pub use replay::{ReplayGuard, ReplayKey};
pub use slack::SlackVerifier;
pub use stripe::{StripeSignatureHeader, StripeVerifier};
pub use telegram::TelegramVerifier;

use crate::clock::UnixTime;
use crate::secret::SecretBytes;

/// What a verified delivery proves, handed to the replay check and the
/// audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub provider: Provider,
    /// The signed timestamp, for providers that sign one. `None` means the
    /// provider gives no signed time; the caller remembers the delivery
    /// under its own clock reading instead.
    pub timestamp: Option<UnixTime>,
    /// Identifies this delivery for replay refusal; derived from the
    /// verified signature, so an attacker cannot vary it without forging.
    pub replay_key: ReplayKey,
}

/// One provider's signature scheme, holding its secret.
pub trait Verifier: Send + Sync {
    fn provider(&self) -> Provider;

    /// Accepts the delivery or says why not. `body` is the raw request
    /// body; `now` is the caller's clock reading.
    fn verify(
        &self,
        body: &[u8],
        headers: &dyn HeaderLookup,
        now: UnixTime,
    ) -> Result<Verified, WebhookError>;
}

/// The verifier for a hook as registered through `POST /v1/hooks`:
/// `secret` is the signing secret, except for Discord where it is the
/// application's public key in hex. `generic_hmac_sha256` uses the default
/// header (`X-Signature: sha256=<hex>`).
pub fn verifier_for(
    provider: Provider,
    secret: &SecretBytes,
) -> Result<Box<dyn Verifier>, WebhookError> {
    let s = secret.clone();
    Ok(match provider {
        Provider::Slack => Box::new(SlackVerifier::new(s)?),
        Provider::Github => Box::new(GithubVerifier::new(s)?),
        Provider::Meta => Box::new(MetaVerifier::new(s)?),
        Provider::Stripe => Box::new(StripeVerifier::new(s)?),
        Provider::Telegram => Box::new(TelegramVerifier::new(s)?),
        Provider::GenericHmacSha256 => Box::new(GenericHmacSha256Verifier::with_defaults(s)?),
        Provider::Discord => {
            let hex = secret
                .expose_str()
                .ok_or(WebhookError::InvalidConfig("public key is not hex"))?;
            Box::new(DiscordVerifier::from_public_key_hex(hex)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn every_provider_has_a_verifier_that_reports_its_name() {
        for p in Provider::ALL {
            let secret = if p == Provider::Discord {
                SecretBytes::from_string(discord_public_key_hex())
            } else {
                SecretBytes::from_string("whsec-test".to_string())
            };
            let v = verifier_for(p, &secret).unwrap();
            assert_eq!(v.provider(), p);
        }
    }

    #[test]
    fn empty_secrets_are_refused_for_every_provider() {
        for p in Provider::ALL {
            let err = verifier_for(p, &SecretBytes::default()).err().unwrap();
            assert_eq!(err.code(), "invalid_config", "{p}");
        }
    }

    #[test]
    fn verifier_debug_output_never_shows_the_secret() {
        let secret = SecretBytes::from_string("hunter2-webhook-secret".to_string());
        for p in Provider::ALL
            .into_iter()
            .filter(|p| *p != Provider::Discord)
        {
            let v = verifier_for(p, &secret).unwrap();
            let err = v
                .verify(b"{}", &Vec::<(&str, &[u8])>::new(), NOW)
                .unwrap_err();
            let shown = format!("{err:?} {err} {:?}", v.provider());
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let g = GithubVerifier::new(secret).unwrap();
        assert!(!format!("{g:?}").contains("hunter2"));
    }
}
