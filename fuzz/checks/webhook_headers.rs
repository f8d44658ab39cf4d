//! Arbitrary bytes into every webhook verifier and the Stripe header
//! parser: none may panic, overflow or loop, whatever the headers hold.
//!
//! Input layout: 8 bytes of clock reading (little-endian i64), then
//! NUL-separated segments. The first segment is the body; each further
//! segment is a header whose first byte picks a name from `NAMES`, so the
//! fuzzer reaches every provider's parser without guessing header names.
//!
//! The fuzz target (`fuzz/fuzz_targets/webhook_headers.rs`) and the stable
//! regression test replaying `fuzz/corpus/webhook_headers/` both call [`run`].

use std::sync::OnceLock;

use gatehouse_domain::webhook::{
    check_freshness, verifier_for, GenericHmacSha256Verifier, Provider, StripeSignatureHeader,
    Verifier,
};
use gatehouse_domain::SecretBytes;

const NAMES: [&str; 10] = [
    "X-Hub-Signature-256",
    "X-Hub-Signature",
    "X-Slack-Signature",
    "X-Slack-Request-Timestamp",
    "Stripe-Signature",
    "X-Signature-Ed25519",
    "X-Signature-Timestamp",
    "X-Telegram-Bot-Api-Secret-Token",
    "X-Signature",
    "X-Acme-Hmac",
];

/// Public key of the Ed25519 key `[7; 32]` used by the domain tests.
const DISCORD_PUBLIC_KEY: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";

fn verifiers() -> &'static [Box<dyn Verifier>] {
    static VERIFIERS: OnceLock<Vec<Box<dyn Verifier>>> = OnceLock::new();
    VERIFIERS.get_or_init(|| {
        let mut all: Vec<Box<dyn Verifier>> = Provider::ALL
            .into_iter()
            .map(|p| {
                let secret = match p {
                    Provider::Discord => DISCORD_PUBLIC_KEY,
                    _ => "fuzz-secret",
                };
                verifier_for(p, &SecretBytes::from_string(secret.to_string()))
                    .expect("fixed fuzz configuration is valid")
            })
            .collect();
        let custom = GenericHmacSha256Verifier::new(
            SecretBytes::from_string("fuzz-secret".to_string()),
            "X-Acme-Hmac",
            "",
        )
        .expect("fixed fuzz configuration is valid");
        all.push(Box::new(custom));
        all
    })
}

/// The target's check on one input: panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let (now, rest) = match data.split_first_chunk::<8>() {
        Some((clock, rest)) => (i64::from_le_bytes(*clock), rest),
        None => (0, data),
    };
    let mut segments = rest.split(|b| *b == 0);
    let body = segments.next().unwrap_or_default();
    let headers: Vec<(&str, &[u8])> = segments
        .filter_map(|s| s.split_first())
        .map(|(pick, value)| (NAMES[usize::from(*pick) % NAMES.len()], value))
        .collect();

    for verifier in verifiers() {
        if let Ok(verified) = verifier.verify(body, &headers, now) {
            if let Some(ts) = verified.timestamp {
                assert!(
                    check_freshness(ts, now).is_ok(),
                    "accepted a stale delivery"
                );
            }
        }
    }
    for (_, value) in &headers {
        if let Ok(text) = std::str::from_utf8(value) {
            let _ = StripeSignatureHeader::parse(text);
        }
    }
}
