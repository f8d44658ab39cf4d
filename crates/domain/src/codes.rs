//! Random identifiers and one-time codes.
//!
//! Codes for humans (bootstrap, login) are stored only as digests and
//! compared digest-to-digest in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::crypto::labelled_digest;
use crate::secret::constant_time_eq;

/// Fills an array from the operating system's CSPRNG. A machine without a
/// working random source cannot run Gatehouse safely, so failure aborts.
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if getrandom::getrandom(&mut out).is_err() {
        // No safe fallback exists: stop rather than emit predictable keys
        // or tokens.
        std::process::abort();
    }
    out
}

/// What [`random_id`] hands out (jobs, hooks, approvals, request ids):
/// 16 random bytes, URL-safe base64 without padding.
pub const ID_PATTERN: &str = "^[A-Za-z0-9_-]{22}$";

/// 128-bit random identifier, URL-safe base64 (22 characters).
pub fn random_id() -> String {
    URL_SAFE_NO_PAD.encode(random_array::<16>())
}

/// Crockford base32 without I, L, O, U: unambiguous when read aloud.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A one-time code for humans: 20 symbols (100 bits) in groups of five.
pub fn human_code() -> String {
    let raw = random_array::<20>();
    let symbols: Vec<char> = raw
        .iter()
        .map(|b| CODE_ALPHABET[(*b & 31) as usize] as char)
        .collect();
    symbols
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Case, dashes and spaces do not matter when a person types a code back.
fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The stored form of a one-time code.
pub fn code_digest(code: &str) -> [u8; 32] {
    labelled_digest(
        "gatehouse/v1/one-time-code",
        normalise_code(code).as_bytes(),
    )
}

pub fn code_matches(presented: &str, stored_digest: &[u8]) -> bool {
    constant_time_eq(&code_digest(presented), stored_digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_bit_and_distinct() {
        let a = random_id();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 16);
        assert_ne!(a, random_id());
    }

    #[test]
    fn codes_match_regardless_of_case_and_dashes() {
        let code = human_code();
        assert_eq!(code.len(), 23);
        let stored = code_digest(&code);
        assert!(code_matches(&code.to_lowercase(), &stored));
        assert!(code_matches(&code.replace('-', ""), &stored));
        assert!(!code_matches(&human_code(), &stored));
        assert!(!code_matches("", &stored));
    }
}
