//! Two small counters with an injected clock.
//!
//! [`FailureWindow`]: failed placeholder resolutions per source address.
//! At [`FAILURE_LIMIT`] failures inside [`FAILURE_WINDOW`] seconds the
//! source is refused (`429`) until its oldest failure leaves the window;
//! a successful resolution clears the count (SPEC §6).
//!
//! [`AuditGate`]: keeps audit volume sane. The same (key) is written at
//! most once per period, so a job swapping one secret towards one host a
//! thousand times a minute leaves one record a minute, and a flood of
//! refusals from one source leaves a bounded trail.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use gatehouse_domain::clock::UnixTime;

pub const FAILURE_LIMIT: usize = 20;
pub const FAILURE_WINDOW: i64 = 300;
/// Sources (or keys) remembered at most; beyond it the map is cleared,
/// which errs towards letting a request through a counter, never
/// towards skipping a check.
const MAX_ENTRIES: usize = 10_000;

/// IPv6 sources count per /64: one host usually holds a whole /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

fn locked<T, R>(m: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    match m.lock() {
        Ok(mut g) => f(&mut g),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

pub struct FailureWindow {
    limit: usize,
    window: i64,
    failures: Mutex<HashMap<IpAddr, VecDeque<UnixTime>>>,
}

impl Default for FailureWindow {
    fn default() -> Self {
        Self::new(FAILURE_LIMIT, FAILURE_WINDOW)
    }
}

impl FailureWindow {
    pub fn new(limit: usize, window: i64) -> Self {
        Self {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `source` may try again, when it is blocked now.
    pub fn blocked_for(&self, source: IpAddr, now: UnixTime) -> Option<u64> {
        let (limit, window) = (self.limit, self.window);
        locked(&self.failures, |map| {
            let q = map.get_mut(&bucket(source))?;
            while q.front().is_some_and(|t| *t <= now - window) {
                q.pop_front();
            }
            if q.len() >= limit {
                q.front()
                    .map(|oldest| (oldest + window - now).max(1) as u64)
            } else {
                None
            }
        })
    }

    pub fn record_failure(&self, source: IpAddr, now: UnixTime) {
        locked(&self.failures, |map| {
            if map.len() >= MAX_ENTRIES && !map.contains_key(&bucket(source)) {
                map.retain(|_, q| q.back().is_some_and(|t| *t > now - self.window));
            }
            let q = map.entry(bucket(source)).or_default();
            q.push_back(now);
            while q.len() > self.limit {
                q.pop_front();
            }
        })
    }

    pub fn clear(&self, source: IpAddr) {
        locked(&self.failures, |map| {
            map.remove(&bucket(source));
        })
    }
}

/// At most one pass per key per `period` seconds.
pub struct AuditGate {
    period: i64,
    seen: Mutex<HashMap<String, UnixTime>>,
}

impl AuditGate {
    pub fn new(period: i64) -> Self {
        Self {
            period,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// True when `key` has not passed within the period (and records it).
    pub fn pass(&self, key: &str, now: UnixTime) -> bool {
        let period = self.period;
        locked(&self.seen, |map| {
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, t| *t > now - period);
            }
            match map.get(key) {
                Some(t) if *t > now - period => false,
                _ => {
                    map.insert(key.to_string(), now);
                    true
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn twenty_failures_block_until_the_oldest_leaves_the_window() {
        let w = FailureWindow::default();
        let src = ip("10.0.0.1");
        for i in 0..19 {
            w.record_failure(src, 1000 + i);
        }
        assert_eq!(w.blocked_for(src, 1019), None);
        w.record_failure(src, 1019);
        assert_eq!(w.blocked_for(src, 1019), Some(281));
        assert_eq!(w.blocked_for(ip("10.0.0.2"), 1019), None);
        assert!(w.blocked_for(src, 1299).is_some());
        assert_eq!(w.blocked_for(src, 1300), None);
    }

    #[test]
    fn a_success_clears_the_count() {
        let w = FailureWindow::default();
        let src = ip("2001:db8::1");
        for i in 0..19 {
            w.record_failure(src, 1000 + i);
        }
        w.clear(ip("2001:db9::1"));
        w.record_failure(src, 1020);
        assert!(w.blocked_for(src, 1020).is_some());
        w.clear(src);
        assert_eq!(w.blocked_for(src, 1020), None);
    }

    #[test]
    fn audit_gate_passes_once_per_period() {
        let g = AuditGate::new(60);
        assert!(g.pass("a", 100));
        assert!(!g.pass("a", 159));
        assert!(g.pass("b", 159));
        assert!(g.pass("a", 160));
    }
}
