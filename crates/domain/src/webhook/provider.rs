//! The webhook providers Gatehouse can verify, by their SPEC names.
//!
//! An unknown name is an error, never a fallback to some default scheme:
//! a hook registered with a typo must not end up checked by the wrong rule.

use std::fmt;
use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Slack,
    Github,
    Discord,
    Telegram,
    /// WhatsApp and Messenger (`X-Hub-Signature-256`, like GitHub).
    Meta,
    Stripe,
    GenericHmacSha256,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("unknown webhook provider")]
pub struct UnknownProvider;

impl Provider {
    pub const ALL: [Provider; 7] = [
        Provider::Slack,
        Provider::Github,
        Provider::Discord,
        Provider::Telegram,
        Provider::Meta,
        Provider::Stripe,
        Provider::GenericHmacSha256,
    ];

    /// Exact, case-sensitive match on the names used by the API.
    pub fn parse(name: &str) -> Result<Self, UnknownProvider> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or(UnknownProvider)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Slack => "slack",
            Provider::Github => "github",
            Provider::Discord => "discord",
            Provider::Telegram => "telegram",
            Provider::Meta => "meta",
            Provider::Stripe => "stripe",
            Provider::GenericHmacSha256 => "generic_hmac_sha256",
        }
    }

    /// Whether the provider signs a timestamp, and so is held to the
    /// freshness window.
    pub fn signs_timestamp(self) -> bool {
        matches!(self, Provider::Slack | Provider::Stripe | Provider::Discord)
    }
}

impl FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_names_round_trip() {
        for name in [
            "slack",
            "github",
            "discord",
            "telegram",
            "meta",
            "stripe",
            "generic_hmac_sha256",
        ] {
            let p: Provider = name.parse().unwrap();
            assert_eq!(p.to_string(), name);
        }
    }

    #[test]
    fn unknown_or_differently_spelled_names_are_refused() {
        for bad in ["", "GitHub", "slack ", "hmac", "whatsapp", "generic"] {
            assert_eq!(Provider::parse(bad), Err(UnknownProvider), "{bad:?}");
        }
    }

    #[test]
    fn only_slack_stripe_and_discord_sign_a_timestamp() {
        let timed: Vec<_> = Provider::ALL
            .into_iter()
            .filter(|p| p.signs_timestamp())
            .collect();
        assert_eq!(
            timed,
            [Provider::Slack, Provider::Discord, Provider::Stripe]
        );
    }
}
