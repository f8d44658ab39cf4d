//! Replay refusal: a bounded memory of recently verified deliveries.
//!
//! A valid signature proves who sent a delivery, not that it is the first
//! time we see it. The guard remembers each delivery's [`ReplayKey`] for
//! the freshness window, counted from its signed timestamp, so a copy
//! inside the window is refused and one outside it is refused as stale by
//! the verifier. Memory is bounded: when full, the oldest entry goes first.
//! Only verified deliveries are remembered, so filling the guard takes
//! genuine signatures, not just traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sha2::{Digest, Sha256};

use super::error::WebhookError;
use super::freshness::MAX_SKEW_SECS;
use super::provider::Provider;
use super::Verified;
use crate::clock::UnixTime;

/// A digest naming one delivery: provider, signed timestamp and the
/// verified signature (or, for Telegram, the body).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplayKey([u8; 32]);

impl ReplayKey {
    pub(crate) fn derive(provider: Provider, timestamp: Option<UnixTime>, material: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"gatehouse/v1/webhook-replay\0");
        h.update(provider.as_str().as_bytes());
        h.update([0u8]);
        match timestamp {
            Some(t) => h.update(t.to_be_bytes()),
            None => h.update(b"none"),
        }
        h.update([0u8]);
        h.update(material);
        Self(h.finalize().into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplayKey({})", hex::encode(&self.0[..8]))
    }
}

/// Remembers deliveries for `window` seconds from their timestamp, at most
/// `capacity` of them.
#[derive(Debug, Clone)]
pub struct ReplayGuard {
    capacity: usize,
    window: i64,
    seen: BTreeMap<ReplayKey, UnixTime>,
    by_age: BTreeSet<(UnixTime, ReplayKey)>,
}

impl ReplayGuard {
    /// A `window` below the freshness tolerance would forget deliveries the
    /// verifier still accepts, so it is raised to [`MAX_SKEW_SECS`].
    pub fn new(capacity: usize, window_secs: i64) -> Self {
        Self {
            capacity: capacity.max(1),
            window: window_secs.max(MAX_SKEW_SECS),
            seen: BTreeMap::new(),
            by_age: BTreeSet::new(),
        }
    }

    /// `true` when `key` was not seen within the window; it is then
    /// remembered. A timestamp outside the window is refused: the guard
    /// could not hold it long enough to vouch for it.
    pub fn check_and_remember(&mut self, key: ReplayKey, ts: UnixTime, now: UnixTime) -> bool {
        let oldest_kept = now.saturating_sub(self.window);
        self.forget_before(oldest_kept);
        if ts < oldest_kept || ts > now.saturating_add(self.window) {
            return false;
        }
        if self.seen.contains_key(&key) {
            return false;
        }
        while self.seen.len() >= self.capacity {
            let Some(oldest) = self.by_age.pop_first() else {
                break;
            };
            self.seen.remove(&oldest.1);
        }
        self.seen.insert(key, ts);
        self.by_age.insert((ts, key));
        true
    }

    /// The replay check for a verified delivery; one without a signed
    /// timestamp is remembered from `now`.
    pub fn admit(&mut self, verified: &Verified, now: UnixTime) -> Result<(), WebhookError> {
        let ts = verified.timestamp.unwrap_or(now);
        if self.check_and_remember(verified.replay_key, ts, now) {
            Ok(())
        } else {
            Err(WebhookError::Replayed)
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn forget_before(&mut self, cutoff: UnixTime) {
        while let Some(&(ts, key)) = self.by_age.first() {
            if ts >= cutoff {
                break;
            }
            self.by_age.pop_first();
            self.seen.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_700_000_000;

    fn key(n: u8) -> ReplayKey {
        ReplayKey::derive(Provider::Github, None, &[n])
    }

    /// The bytes the store keeps are the digest itself: one per delivery,
    /// the same for the same delivery.
    #[test]
    fn a_key_is_its_digest_and_names_one_delivery() {
        let same = ReplayKey::derive(Provider::Stripe, Some(NOW), b"sig");
        assert_eq!(
            same.as_bytes(),
            ReplayKey::derive(Provider::Stripe, Some(NOW), b"sig").as_bytes()
        );
        let others = [
            ReplayKey::derive(Provider::Github, Some(NOW), b"sig"),
            ReplayKey::derive(Provider::Stripe, Some(NOW + 1), b"sig"),
            ReplayKey::derive(Provider::Stripe, None, b"sig"),
            ReplayKey::derive(Provider::Stripe, Some(NOW), b"sih"),
        ];
        for other in others {
            assert_ne!(same.as_bytes(), other.as_bytes(), "{other:?}");
        }
        assert_eq!(same.as_bytes(), &same.0);
        assert_ne!(same.as_bytes(), &[0; 32]);
    }

    #[test]
    fn second_sighting_within_the_window_is_refused() {
        let mut g = ReplayGuard::new(10, 300);
        assert!(g.is_empty());
        assert!(g.check_and_remember(key(1), NOW, NOW));
        assert!(!g.is_empty());
        assert!(!g.check_and_remember(key(1), NOW, NOW + 299));
        assert!(g.check_and_remember(key(2), NOW, NOW));
    }

    /// The window's edges are inside it.
    #[test]
    fn timestamps_at_the_edges_of_the_window_are_taken() {
        let mut g = ReplayGuard::new(10, 300);
        assert!(g.check_and_remember(key(1), NOW - 300, NOW));
        assert!(g.check_and_remember(key(2), NOW + 300, NOW));
        assert!(!g.check_and_remember(key(3), NOW - 301, NOW));
        assert!(!g.check_and_remember(key(4), NOW + 301, NOW));
    }

    #[test]
    fn entries_are_forgotten_once_older_than_the_window() {
        let mut g = ReplayGuard::new(10, 300);
        assert!(g.check_and_remember(key(1), NOW, NOW));
        assert!(g.check_and_remember(key(2), NOW + 301, NOW + 301));
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn future_dated_entries_are_kept_until_their_own_window_ends() {
        let mut g = ReplayGuard::new(10, 300);
        assert!(g.check_and_remember(key(1), NOW + 300, NOW));
        assert!(!g.check_and_remember(key(1), NOW + 300, NOW + 600));
    }

    #[test]
    fn timestamps_outside_the_window_are_refused() {
        let mut g = ReplayGuard::new(10, 300);
        assert!(!g.check_and_remember(key(1), NOW - 301, NOW));
        assert!(!g.check_and_remember(key(1), NOW + 301, NOW));
        assert!(g.is_empty());
    }

    #[test]
    fn when_full_the_oldest_entry_is_evicted_first() {
        let mut g = ReplayGuard::new(2, 300);
        assert!(g.check_and_remember(key(1), NOW - 10, NOW));
        assert!(g.check_and_remember(key(2), NOW - 20, NOW));
        assert!(g.check_and_remember(key(3), NOW, NOW));
        assert_eq!(g.len(), 2);
        assert!(!g.check_and_remember(key(1), NOW - 10, NOW));
        assert!(
            g.check_and_remember(key(2), NOW - 20, NOW),
            "oldest was evicted"
        );
    }

    #[test]
    fn short_windows_and_zero_capacity_are_raised_to_safe_minimums() {
        let mut g = ReplayGuard::new(0, 1);
        assert!(g.check_and_remember(key(1), NOW, NOW));
        assert!(!g.check_and_remember(key(1), NOW, NOW + 300));
    }

    #[test]
    fn admit_uses_now_when_the_provider_signs_no_timestamp() {
        let mut g = ReplayGuard::new(10, 300);
        let v = Verified {
            provider: Provider::Telegram,
            timestamp: None,
            replay_key: key(9),
        };
        assert_eq!(g.admit(&v, NOW), Ok(()));
        assert_eq!(g.admit(&v, NOW + 1), Err(WebhookError::Replayed));
        assert_eq!(g.admit(&v, NOW + 301), Ok(()));
    }

    #[test]
    fn replay_keys_separate_providers_and_timestamps() {
        let a = ReplayKey::derive(Provider::Github, None, b"sig");
        assert_ne!(a, ReplayKey::derive(Provider::Meta, None, b"sig"));
        assert_ne!(a, ReplayKey::derive(Provider::Github, Some(0), b"sig"));
        assert!(format!("{a:?}").starts_with("ReplayKey("));
    }
}
