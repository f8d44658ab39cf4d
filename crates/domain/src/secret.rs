//! Secret material lives in types that zeroize on drop, never print, and
//! compare in constant time.

use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Bytes that must never be logged: secret values, keys, codes.
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }
    pub fn from_string(mut s: String) -> Self {
        let bytes = std::mem::take(&mut s).into_bytes();
        s.zeroize();
        Self::new(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// The value as UTF-8, for secrets that were written as JSON strings.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(self.expose(), other.expose())
    }
}
impl Eq for SecretBytes {}

/// Constant-time equality for secrets, digests and signatures. Lengths are
/// not secret (they are public in every format we compare).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_appears_in_debug_output() {
        let s = SecretBytes::from_string("hunter2-very-secret".to_string());
        let shown = format!("{s:?} {:?}", vec![s.clone()]);
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn equality_is_by_content() {
        assert_eq!(
            SecretBytes::new(b"abc".to_vec()),
            SecretBytes::new(b"abc".to_vec())
        );
        assert_ne!(
            SecretBytes::new(b"abc".to_vec()),
            SecretBytes::new(b"abd".to_vec())
        );
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
