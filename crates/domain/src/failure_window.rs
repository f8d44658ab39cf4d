//! Failures per source address in a sliding window: the one counter
//! behind every "too many attempts" answer (wrong bootstrap or login
//! codes, failed placeholder resolutions at the egress proxy, refused
//! tokens worth auditing). The caller passes the time, so tests move a
//! clock instead of sleeping.
//!
//! IPv6 sources count per /64 (one host usually holds a whole /64 and
//! could otherwise rotate addresses freely); IPv4-mapped IPv6 counts as
//! the IPv4 address.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

use crate::clock::UnixTime;
use crate::lru::Lru;

/// Sources remembered at most (by default): a hard cap. Beyond it the
/// source used least recently is forgotten, which errs towards letting a
/// source try again, never towards skipping a check, and never pushes
/// out a source that is still trying before quieter ones. Each entry
/// holds at most `limit` timestamps, so memory is bounded by
/// `MAX_SOURCES × limit` whatever the number of sources.
pub const MAX_SOURCES: usize = 10_000;

/// The key a source is counted under.
pub fn source_bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// At `limit` failures inside `window` seconds a source is blocked until
/// its oldest failure leaves the window.
pub struct FailureWindow {
    limit: usize,
    window: i64,
    failures: Mutex<Lru<IpAddr, VecDeque<UnixTime>>>,
}

impl FailureWindow {
    /// A window remembering at most [`MAX_SOURCES`] sources.
    pub fn new(limit: usize, window: i64) -> Self {
        Self::with_capacity(limit, window, MAX_SOURCES)
    }

    /// A window remembering at most `max_sources` sources (least recently
    /// used forgotten first).
    pub fn with_capacity(limit: usize, window: i64, max_sources: usize) -> Self {
        Self {
            limit: limit.max(1),
            window,
            failures: Mutex::new(Lru::new(max_sources)),
        }
    }

    /// Sources currently remembered (never above the capacity).
    pub fn len(&self) -> usize {
        self.with_map(|map| map.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most sources this window remembers.
    pub fn capacity(&self) -> usize {
        self.with_map(|map| map.capacity())
    }

    fn with_map<T>(&self, f: impl FnOnce(&mut Lru<IpAddr, VecDeque<UnixTime>>) -> T) -> T {
        // A poisoned lock still holds a usable map: counting goes on.
        match self.failures.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Seconds until `source` may try again, when it is blocked now.
    pub fn blocked_for(&self, source: IpAddr, now: UnixTime) -> Option<u64> {
        let (limit, window) = (self.limit, self.window);
        self.with_map(|map| {
            let key = source_bucket(source);
            // Asking counts as use: a blocked source that keeps trying
            // stays remembered (and blocked) ahead of quiet ones.
            let q = map.get_mut(&key)?;
            while q.front().is_some_and(|t| *t <= now - window) {
                q.pop_front();
            }
            if q.is_empty() {
                map.remove(&key);
                return None;
            }
            if q.len() >= limit {
                q.front()
                    .map(|oldest| u64::try_from((oldest + window - now).max(1)).unwrap_or(1))
            } else {
                None
            }
        })
    }

    pub fn record_failure(&self, source: IpAddr, now: UnixTime) {
        let (limit, window) = (self.limit, self.window);
        self.with_map(|map| {
            let q = map.get_or_insert_with(source_bucket(source), VecDeque::new);
            while q.front().is_some_and(|t| *t <= now - window) {
                q.pop_front();
            }
            q.push_back(now);
            // Only the newest `limit` failures can decide a block.
            while q.len() > limit {
                q.pop_front();
            }
        });
    }

    /// Forgets a source's failures (a success clears its count).
    pub fn clear(&self, source: IpAddr) {
        self.with_map(|map| {
            map.remove(&source_bucket(source));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn five_failures_a_minute_block_the_sixth_attempt() {
        let l = FailureWindow::new(5, 60);
        let src = ip("203.0.113.9");
        for t in 0..5 {
            assert_eq!(l.blocked_for(src, 100 + t), None);
            l.record_failure(src, 100 + t);
        }
        assert_eq!(l.blocked_for(src, 105), Some(55));
        assert!(l.blocked_for(ip("203.0.113.10"), 105).is_none());
        assert_eq!(l.blocked_for(src, 160), None, "the window passed");
    }

    #[test]
    fn twenty_failures_block_until_the_oldest_leaves_the_window() {
        let w = FailureWindow::new(20, 300);
        let src = ip("10.0.0.1");
        for i in 0..19 {
            w.record_failure(src, 1000 + i);
        }
        assert_eq!(w.blocked_for(src, 1019), None);
        w.record_failure(src, 1019);
        assert_eq!(w.blocked_for(src, 1019), Some(281));
        assert!(w.blocked_for(src, 1299).is_some());
        assert_eq!(w.blocked_for(src, 1300), None);
    }

    #[test]
    fn ipv6_sources_count_per_slash_64_and_mapped_ipv4_as_ipv4() {
        let l = FailureWindow::new(2, 60);
        l.record_failure(ip("2001:db8::1"), 0);
        l.record_failure(ip("2001:db8::ffff:2"), 0);
        assert!(l.blocked_for(ip("2001:db8::3"), 1).is_some());
        assert!(l.blocked_for(ip("2001:db8:0:1::3"), 1).is_none());
        l.record_failure(ip("::ffff:192.0.2.1"), 0);
        l.record_failure(ip("192.0.2.1"), 0);
        assert!(l.blocked_for(ip("192.0.2.1"), 1).is_some());
    }

    #[test]
    fn a_success_clears_the_count() {
        let w = FailureWindow::new(2, 60);
        let src = ip("2001:db8::1");
        w.record_failure(src, 10);
        w.record_failure(src, 11);
        w.clear(ip("2001:db9::1"));
        assert!(w.blocked_for(src, 12).is_some());
        w.clear(src);
        assert_eq!(w.blocked_for(src, 12), None);
    }

    fn nth_source(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn a_hundred_thousand_sources_stay_within_the_cap() {
        let w = FailureWindow::with_capacity(20, 300, 1_000);
        for i in 0..100_000 {
            w.record_failure(nth_source(i), 1000 + i64::from(i / 1000));
            assert!(w.len() <= 1_000);
        }
        assert_eq!(w.len(), 1_000);
        // The newest sources are the ones remembered, with their count.
        w.record_failure(nth_source(99_999), 1100);
        assert_eq!(w.len(), 1_000);
        assert!(w.blocked_for(nth_source(0), 1100).is_none(), "evicted");
    }

    #[test]
    fn an_active_source_outlives_a_flood_of_idle_ones() {
        let w = FailureWindow::with_capacity(3, 300, 100);
        let attacker = ip("198.51.100.7");
        for t in 0..3 {
            w.record_failure(attacker, 1000 + t);
        }
        assert!(w.blocked_for(attacker, 1003).is_some());
        // 100,000 one-shot sources churn through the cap while the blocked
        // source keeps asking: it stays remembered, and blocked.
        for i in 0..100_000u32 {
            w.record_failure(nth_source(i), 1003);
            if i % 50 == 0 {
                assert!(w.blocked_for(attacker, 1003).is_some(), "after {i}");
            }
        }
        assert!(w.len() <= 100);
        assert_eq!(w.blocked_for(attacker, 1003), Some(297));
        // A source that went quiet is forgotten first.
        let quiet = ip("198.51.100.8");
        w.record_failure(quiet, 1003);
        for i in 0..100u32 {
            w.record_failure(nth_source(200_000 + i), 1004);
            if i % 10 == 0 {
                assert!(w.blocked_for(attacker, 1004).is_some());
            }
        }
        assert!(w.blocked_for(attacker, 1004).is_some());
        assert!(w.blocked_for(quiet, 1004).is_none());
    }

    #[test]
    fn expired_entries_free_their_room() {
        let w = FailureWindow::with_capacity(2, 60, 10);
        w.record_failure(ip("192.0.2.1"), 0);
        assert_eq!(w.len(), 1);
        assert_eq!(w.blocked_for(ip("192.0.2.1"), 61), None);
        assert_eq!(w.len(), 0);
    }

    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap;

        #[derive(Debug, Clone)]
        enum Op {
            Fail(u8, i64),
            Ask(u8, i64),
            Clear(u8),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0u8..12, 0i64..5).prop_map(|(s, dt)| Op::Fail(s, dt)),
                (0u8..12, 0i64..5).prop_map(|(s, dt)| Op::Ask(s, dt)),
                (0u8..12).prop_map(Op::Clear),
            ]
        }

        /// The naive rule, unbounded: the newest failures inside the
        /// window, per source.
        fn blocked(
            model: &HashMap<u8, Vec<i64>>,
            s: u8,
            now: i64,
            limit: usize,
            window: i64,
        ) -> Option<u64> {
            let live: Vec<i64> = model
                .get(&s)
                .map(|v| v.iter().copied().filter(|t| *t > now - window).collect())
                .unwrap_or_default();
            let live = &live[live.len().saturating_sub(limit)..];
            (live.len() >= limit).then(|| u64::try_from((live[0] + window - now).max(1)).unwrap())
        }

        proptest! {
            /// With room for every source the counts are exactly the naive
            /// rule's; with less room, a remembered source never counts more
            /// failures than it had and the cap always holds.
            #[test]
            fn counts_match_the_naive_rule(ops in proptest::collection::vec(op(), 1..300), cap in 1usize..16) {
                let (limit, window) = (3usize, 7i64);
                let w = FailureWindow::with_capacity(limit, window, cap);
                let mut model: HashMap<u8, Vec<i64>> = HashMap::new();
                let mut now = 0i64;
                for op in ops {
                    match op {
                        Op::Fail(s, dt) => {
                            now += dt;
                            w.record_failure(nth_source(u32::from(s)), now);
                            model.entry(s).or_default().push(now);
                        }
                        Op::Ask(s, dt) => {
                            now += dt;
                            let got = w.blocked_for(nth_source(u32::from(s)), now);
                            let want = blocked(&model, s, now, limit, window);
                            if cap >= 12 {
                                prop_assert_eq!(got, want);
                            } else if want.is_none() {
                                prop_assert_eq!(got, None, "never blocks a source the rule lets through");
                            }
                        }
                        Op::Clear(s) => {
                            w.clear(nth_source(u32::from(s)));
                            model.remove(&s);
                        }
                    }
                    prop_assert!(w.len() <= cap);
                }
            }
        }
    }
}
