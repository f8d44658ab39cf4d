//! CSRF tokens for the web console's forms: HMAC-SHA256 of what the
//! session is known by (its token id), under a key only the server holds,
//! domain-separated from every other use of that key. A form posted
//! without the token of the very session presenting it is refused.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::constant_time_eq;

/// The token for a session `binding` (e.g. `jti:<jti>`), as hex.
pub fn token(key: &[u8; 32], binding: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this arm cannot be reached.
        return String::new();
    };
    mac.update(b"gatehouse/v1/console-csrf\0");
    mac.update(binding.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `presented` is the token of `binding`, in constant time.
pub fn matches(key: &[u8; 32], binding: &str, presented: &str) -> bool {
    let expected = token(key, binding);
    !presented.is_empty() && constant_time_eq(expected.as_bytes(), presented.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_only_for_its_own_session_and_key() {
        let key = [7u8; 32];
        let t = token(&key, "jti:a");
        assert_eq!(t.len(), 64);
        assert!(matches(&key, "jti:a", &t));
        assert!(!matches(&key, "jti:b", &t));
        assert!(!matches(&[8u8; 32], "jti:a", &t));
        assert!(!matches(&key, "jti:a", ""));
        assert!(!matches(&key, "jti:a", &t[..63]));
    }
}
