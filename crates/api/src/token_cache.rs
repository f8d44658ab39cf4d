//! The cache of already-verified tokens, so a repeated token skips the
//! Ed25519 check. Revocation and the time window are still checked on
//! every request (by the domain verifier).
//!
//! Entries are keyed by a 128-bit keyed digest of the whole token: two
//! SipHash-1-3 instances with random keys chosen at start, so nobody can
//! aim a forged token at a cached entry. Entries die at the token's `exp`;
//! the cache is bounded, and when full it first drops expired entries and
//! otherwise simply stops caching until room frees up.

use std::hash::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use gatehouse_domain::clock::Clock;
use gatehouse_domain::token::{Claims, VerifiedCache};

pub const DEFAULT_CAPACITY: usize = 100_000;

pub struct TokenCache {
    entries: papaya::HashMap<u128, Arc<Claims>>,
    keys: (RandomState, RandomState),
    capacity: usize,
    clock: Arc<dyn Clock>,
}

impl TokenCache {
    pub fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: papaya::HashMap::new(),
            keys: (RandomState::new(), RandomState::new()),
            capacity,
            clock,
        }
    }

    fn digest(&self, token: &str) -> u128 {
        let mut a = self.keys.0.build_hasher();
        let mut b = self.keys.1.build_hasher();
        a.write(token.as_bytes());
        b.write(token.as_bytes());
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl VerifiedCache for TokenCache {
    fn get(&self, token: &str) -> Option<Claims> {
        self.entries
            .pin()
            .get(&self.digest(token))
            .map(|c| Claims::clone(c))
    }

    fn put(&self, token: &str, claims: &Claims) {
        if self.entries.len() >= self.capacity {
            let now = self.clock.now();
            self.entries.pin().retain(|_, c| c.exp > now);
            if self.entries.len() >= self.capacity {
                return;
            }
        }
        self.entries
            .pin()
            .insert(self.digest(token), Arc::new(claims.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_domain::ManualClock;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: "s".into(),
            owner: "o@x.org".into(),
            cls: gatehouse_domain::CredentialClass::Agent,
            jti: "j".into(),
            iat: 0,
            nbf: 0,
            exp,
            scope: String::new(),
        }
    }

    #[test]
    fn tokens_are_found_by_their_exact_text_only() {
        let cache = TokenCache::new(10, Arc::new(ManualClock::new(0)));
        cache.put("a.b.c", &claims(100));
        assert_eq!(cache.get("a.b.c").map(|c| c.exp), Some(100));
        assert!(cache.get("a.b.d").is_none());
        assert!(cache.get("a.b.c ").is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_stops_growing() {
        let clock = ManualClock::new(0);
        let cache = TokenCache::new(2, Arc::new(clock.clone()));
        cache.put("t1", &claims(10));
        cache.put("t2", &claims(100));
        cache.put("t3", &claims(100));
        assert_eq!(cache.len(), 2, "full: t3 not cached");
        assert!(cache.get("t3").is_none());
        clock.set(50);
        cache.put("t3", &claims(100));
        assert!(cache.get("t1").is_none(), "expired entry dropped");
        assert!(cache.get("t3").is_some());
    }
}
