//! Failures per source address in a sliding window: the one counter
//! behind every "too many attempts" answer (wrong bootstrap or login
//! codes, failed placeholder resolutions at the egress proxy, refused
//! tokens worth auditing). The caller passes the time, so tests move a
//! clock instead of sleeping.
//!
//! IPv6 sources count per /64 (one host usually holds a whole /64 and
//! could otherwise rotate addresses freely); IPv4-mapped IPv6 counts as
//! the IPv4 address.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

use crate::clock::UnixTime;

/// Sources remembered at most; beyond it the quietest are forgotten,
/// which errs towards letting a source try again, never towards skipping
/// a check.
const MAX_SOURCES: usize = 10_000;

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
    failures: Mutex<HashMap<IpAddr, VecDeque<UnixTime>>>,
}

impl FailureWindow {
    pub fn new(limit: usize, window: i64) -> Self {
        Self {
            limit: limit.max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn with_map<T>(&self, f: impl FnOnce(&mut HashMap<IpAddr, VecDeque<UnixTime>>) -> T) -> T {
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
            let q = map.get_mut(&source_bucket(source))?;
            while q.front().is_some_and(|t| *t <= now - window) {
                q.pop_front();
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
            let key = source_bucket(source);
            if map.len() >= MAX_SOURCES && !map.contains_key(&key) {
                map.retain(|_, q| q.back().is_some_and(|t| *t > now - window));
            }
            let q = map.entry(key).or_default();
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
}
