//! HMAC-SHA256 as every HMAC provider uses it, and the one comparison.
//!
//! Kept in one place so that no verifier can compare a digest with `==`:
//! [`mac_matches`] goes through [`constant_time_eq`], which leaks only the
//! (public) length.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::WebhookError;
use crate::secret::{constant_time_eq, SecretBytes};

/// HMAC-SHA256 of the concatenation of `parts` under `key`; the parts are
/// fed in sequence so the body is never copied.
pub(crate) fn hmac_sha256(key: &SecretBytes, parts: &[&[u8]]) -> Result<[u8; 32], WebhookError> {
    // HMAC takes keys of any length; the error arm is unreachable in
    // practice but is handled rather than unwrapped.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose())
        .map_err(|_| WebhookError::InvalidConfig("unusable HMAC key"))?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().into())
}

/// Constant-time comparison of an expected and a presented digest.
pub(crate) fn mac_matches(expected: &[u8], presented: &[u8]) -> bool {
    constant_time_eq(expected, presented)
}

/// An empty HMAC key is one every sender knows: refuse it at setup.
pub(crate) fn require_secret(secret: &SecretBytes) -> Result<(), WebhookError> {
    if secret.is_empty() {
        Err(WebhookError::InvalidConfig("empty secret"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_test_case_2() {
        let key = SecretBytes::new(b"Jefe".to_vec());
        let mac = hmac_sha256(&key, &[b"what do ya want ", b"for nothing?"]).unwrap();
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn comparison_refuses_different_lengths_and_bytes() {
        assert!(mac_matches(b"abcd", b"abcd"));
        assert!(!mac_matches(b"abcd", b"abc"));
        assert!(!mac_matches(b"abcd", b"abce"));
    }
}
