//! Fixtures shared by the provider tests: a fixed clock reading, a fixed
//! Ed25519 key for Discord, and an independent HMAC helper so tests do not
//! check the code under test against itself.

use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::UnixTime;

/// Slack's documented example timestamp, used as "now" everywhere.
pub const NOW: UnixTime = 1_531_420_618;

pub fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

pub fn discord_signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

pub fn discord_public_key_hex() -> String {
    hex::encode(discord_signing_key().verifying_key().as_bytes())
}

/// Headers as the tests write them: name and text value.
pub fn headers(pairs: &[(&'static str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_string(), v.as_bytes().to_vec()))
        .collect()
}
