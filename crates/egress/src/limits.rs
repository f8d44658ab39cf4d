//! Two small counters with an injected clock.
//!
//! [`placeholder_failures`]: failed placeholder resolutions per source
//! address (the domain's `FailureWindow`). At [`FAILURE_LIMIT`] failures
//! inside [`FAILURE_WINDOW`] seconds the source is refused (`429`) until
//! its oldest failure leaves the window; a successful resolution clears
//! the count (SPEC §6).
//!
//! [`AuditGate`]: keeps audit volume sane. The same (key) is written at
//! most once per period, so a job swapping one secret towards one host a
//! thousand times a minute leaves one record a minute, and a flood of
//! refusals from one source leaves a bounded trail.

use std::collections::HashMap;
use std::sync::Mutex;

use gatehouse_domain::clock::UnixTime;
pub use gatehouse_domain::failure_window::FailureWindow;

pub const FAILURE_LIMIT: usize = 20;
pub const FAILURE_WINDOW: i64 = 300;
/// Keys remembered at most; beyond it stale ones are dropped, which errs
/// towards writing a record, never towards skipping a check.
const MAX_ENTRIES: usize = 10_000;

fn locked<T, R>(m: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    match m.lock() {
        Ok(mut g) => f(&mut g),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

/// The per-source failure counter the proxy uses: the domain's, at the
/// spec's limit.
pub fn placeholder_failures() -> FailureWindow {
    FailureWindow::new(FAILURE_LIMIT, FAILURE_WINDOW)
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

    #[test]
    fn audit_gate_passes_once_per_period() {
        let g = AuditGate::new(60);
        assert!(g.pass("a", 100));
        assert!(!g.pass("a", 159));
        assert!(g.pass("b", 159));
        assert!(g.pass("a", 160));
    }
}
