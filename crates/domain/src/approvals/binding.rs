//! What an approval is bound to, and how a secret is shown to deciders.
//!
//! The digest covers the verb and the exact parameters, canonically
//! encoded (object keys sorted, as `serde_json::Value` keeps them), so a
//! request cannot be swapped for another after a human has looked at it.
//! A secret value is part of the parameters only as its keyed fingerprint:
//! deciders can compare it with what they expect without the value (or an
//! unkeyed hash of it, which a guess could be checked against) ever being
//! shown.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::Verb;

/// Longest reason accepted in `Gatehouse-Approval-Bypass`.
pub const BYPASS_REASON_MAX: usize = 200;
/// A bypass reason as a header carries it: printable ASCII, not blank
/// (at most [`BYPASS_REASON_MAX`] characters, the `maxLength` beside it).
pub const BYPASS_REASON_PATTERN: &str = "^[ -~]*[!-~][ -~]*$";

/// SHA-256 over the verb and the canonical JSON of its parameters.
pub fn params_digest(verb: Verb, params: &serde_json::Value) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"gatehouse/v1/approval-params\0");
    h.update(verb.as_str().as_bytes());
    h.update([0u8]);
    h.update(params.to_string().as_bytes());
    h.finalize().into()
}

/// A short keyed fingerprint of a secret value: the first 8 bytes of
/// HMAC-SHA256 under a key only Gatehouse holds (the owner's data key),
/// as hex. Equal values of one owner give equal fingerprints.
pub fn fingerprint(key: &[u8; 32], value: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this arm cannot be reached.
        return String::new();
    };
    mac.update(b"gatehouse/v1/secret-fingerprint\0");
    mac.update(value);
    hex::encode(&mac.finalize().into_bytes()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digest_changes_with_any_parameter_or_the_verb() {
        let base = params_digest(Verb::SecretWrite, &json!({"name": "a", "length": 3}));
        assert_ne!(
            base,
            params_digest(Verb::SecretWrite, &json!({"name": "b", "length": 3}))
        );
        assert_ne!(
            base,
            params_digest(Verb::SecretWrite, &json!({"name": "a", "length": 4}))
        );
        assert_ne!(
            base,
            params_digest(Verb::SecretDelete, &json!({"name": "a", "length": 3}))
        );
    }

    #[test]
    fn digest_does_not_depend_on_key_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"x":1,"y":[2,3]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"y":[2,3],"x":1}"#).unwrap();
        assert_eq!(
            params_digest(Verb::PolicyChange, &a),
            params_digest(Verb::PolicyChange, &b)
        );
    }

    #[test]
    fn fingerprint_is_keyed_short_and_stable() {
        let k1 = [1u8; 32];
        let k2 = [2u8; 32];
        let f = fingerprint(&k1, b"hunter2");
        assert_eq!(f.len(), 16);
        assert_eq!(f, fingerprint(&k1, b"hunter2"));
        assert_ne!(f, fingerprint(&k2, b"hunter2"));
        assert_ne!(f, fingerprint(&k1, b"hunter3"));
        assert!(!f.contains("hunter2"));
    }
}
