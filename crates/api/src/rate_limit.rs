//! Failure counting per source address, for guessable endpoints (claim,
//! login). IPv6 sources count per /64, since one host usually holds a
//! whole /64 and could otherwise rotate addresses freely.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use gatehouse_domain::clock::UnixTime;

/// Entries kept at most; beyond it the quietest sources are forgotten.
const MAX_SOURCES: usize = 10_000;

pub struct FailureLimiter {
    limit: usize,
    window: i64,
    failures: Mutex<HashMap<IpAddr, VecDeque<UnixTime>>>,
}

fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl FailureLimiter {
    pub fn new(limit: usize, window: i64) -> Self {
        Self {
            limit,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn with_map<T>(&self, f: impl FnOnce(&mut HashMap<IpAddr, VecDeque<UnixTime>>) -> T) -> T {
        match self.failures.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Seconds until the source may try again, if it is blocked now.
    pub fn blocked_for(&self, ip: IpAddr, now: UnixTime) -> Option<u64> {
        let window = self.window;
        let limit = self.limit;
        self.with_map(|map| {
            let q = map.get_mut(&bucket(ip))?;
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

    pub fn record_failure(&self, ip: IpAddr, now: UnixTime) {
        let window = self.window;
        self.with_map(|map| {
            if map.len() >= MAX_SOURCES && !map.contains_key(&bucket(ip)) {
                map.retain(|_, q| q.back().is_some_and(|t| *t > now - window));
            }
            let q = map.entry(bucket(ip)).or_default();
            q.push_back(now);
            while q.len() > 64 {
                q.pop_front();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_a_minute_block_the_sixth_attempt() {
        let l = FailureLimiter::new(5, 60);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for t in 0..5 {
            assert_eq!(l.blocked_for(ip, 100 + t), None);
            l.record_failure(ip, 100 + t);
        }
        assert_eq!(l.blocked_for(ip, 105), Some(55));
        assert!(l
            .blocked_for("203.0.113.10".parse().unwrap(), 105)
            .is_none());
        assert_eq!(l.blocked_for(ip, 160), None, "the window passed");
    }

    #[test]
    fn ipv6_sources_count_per_slash_64() {
        let l = FailureLimiter::new(2, 60);
        l.record_failure("2001:db8::1".parse().unwrap(), 0);
        l.record_failure("2001:db8::ffff:2".parse().unwrap(), 0);
        assert!(l.blocked_for("2001:db8::3".parse().unwrap(), 1).is_some());
        assert!(l
            .blocked_for("2001:db8:0:1::3".parse().unwrap(), 1)
            .is_none());
    }
}
