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
///
/// Eight bytes at a time, every word of both inputs read whatever differs,
/// the running difference passed through an optimisation barrier at each
/// step (as `subtle` does per byte) so no early exit can be compiled in;
/// the last word's verdict is `subtle`'s. A byte-wise `ct_eq` costs about
/// eight times as much, which matters where a token is compared on every
/// proxied request.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // 32 bytes (four words) between barriers, then words, then bytes:
    // every byte is read whatever the earlier ones were.
    let (a_blocks, a_tail) = a.as_chunks::<32>();
    let (b_blocks, b_tail) = b.as_chunks::<32>();
    let mut diff = 0u64;
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        let block = x
            .as_chunks::<8>()
            .0
            .iter()
            .zip(y.as_chunks::<8>().0)
            .fold(0, |d, (p, q)| {
                d | (u64::from_ne_bytes(*p) ^ u64::from_ne_bytes(*q))
            });
        diff = std::hint::black_box(diff | block);
    }
    let (a_words, a_rest) = a_tail.as_chunks::<8>();
    let (b_words, b_rest) = b_tail.as_chunks::<8>();
    for (x, y) in a_words.iter().zip(b_words) {
        diff = std::hint::black_box(diff | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y)));
    }
    for (x, y) in a_rest.iter().zip(b_rest) {
        diff = std::hint::black_box(diff | u64::from(x ^ y));
    }
    bool::from(diff.ct_eq(&0))
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

    proptest::proptest! {
        #[test]
        fn constant_time_eq_agrees_with_plain_equality(
            a in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            flip in proptest::prelude::any::<(usize, u8)>(),
        ) {
            proptest::prop_assert!(constant_time_eq(&a, &a.clone()));
            let mut b = a.clone();
            if !b.is_empty() && flip.1 != 0 {
                let i = flip.0 % b.len();
                b[i] ^= flip.1;
                proptest::prop_assert!(!constant_time_eq(&a, &b));
            }
            proptest::prop_assert_eq!(constant_time_eq(&a, &b), a == b);
        }
    }
}
