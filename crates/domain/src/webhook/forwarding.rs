//! Which request headers of a verified delivery reach the owner's
//! `forward_to` (SPEC §9): `Content-Type`, the provider's own signature
//! and event headers, nothing else.
//!
//! An allow-list per provider, not a deny-list: whoever sends a delivery
//! chooses its headers, and a deny-list forgets the next credential-like
//! header (`Authorization`, `Cookie`, `Proxy-*`, `Forwarded`,
//! `X-Forwarded-*`, the identity header). `X-Gatehouse-Verified` is set by
//! Gatehouse itself, never copied.

use super::generic_hmac_sha256::DEFAULT_HEADER as GENERIC_SIGNATURE;
use super::Provider;

/// Headers every forwarded delivery may carry, whatever the provider.
const COMMON: &[&str] = &["content-type"];

/// The provider's own headers (compared case-insensitively), kept in a forwarded delivery.
pub fn provider_headers(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Github => &[
            "x-github-event",
            "x-github-delivery",
            "x-github-hook-id",
            "x-github-hook-installation-target-id",
            "x-github-hook-installation-target-type",
            "x-hub-signature-256",
        ],
        Provider::Slack => &[
            "x-slack-signature",
            "x-slack-request-timestamp",
            "x-slack-retry-num",
            "x-slack-retry-reason",
        ],
        Provider::Discord => &["x-signature-ed25519", "x-signature-timestamp"],
        Provider::Telegram => &["x-telegram-bot-api-secret-token"],
        Provider::Meta => &["x-hub-signature-256"],
        Provider::Stripe => &["stripe-signature"],
        Provider::GenericHmacSha256 => &[GENERIC_SIGNATURE],
    }
}

/// Whether request header `name` (any case) is forwarded for `provider`.
pub fn is_forwarded(provider: Provider, name: &str) -> bool {
    COMMON
        .iter()
        .chain(provider_headers(provider))
        .any(|h| h.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_proxy_headers_are_never_forwarded_for_any_provider() {
        for p in Provider::ALL {
            for h in [
                "Authorization",
                "Cookie",
                "Proxy-Authorization",
                "Proxy-Connection",
                "Forwarded",
                "X-Forwarded-For",
                "X-Forwarded-Email",
                "X-Gatehouse-Verified",
                "Host",
                "Content-Length",
                "Transfer-Encoding",
            ] {
                assert!(!is_forwarded(p, h), "{p:?} {h}");
            }
            assert!(is_forwarded(p, "Content-Type"));
        }
    }

    #[test]
    fn each_provider_keeps_its_signature_header() {
        assert!(is_forwarded(Provider::Github, "X-Hub-Signature-256"));
        assert!(is_forwarded(Provider::Github, "X-GitHub-Event"));
        assert!(is_forwarded(Provider::Stripe, "Stripe-Signature"));
        assert!(is_forwarded(Provider::Slack, "X-Slack-Signature"));
        assert!(is_forwarded(Provider::GenericHmacSha256, GENERIC_SIGNATURE));
        assert!(!is_forwarded(Provider::Stripe, "X-Hub-Signature-256"));
    }
}
