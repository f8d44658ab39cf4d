//! Two small counters with an injected clock, both bounded in memory
//! whatever the traffic.
//!
//! [`placeholder_failures`]: failed placeholder resolutions per source
//! address (the domain's `FailureWindow`, capped with least-recently-used
//! eviction). At [`FAILURE_LIMIT`] failures inside [`FAILURE_WINDOW`]
//! seconds the source is refused (`429`) until its oldest failure leaves
//! the window; a successful resolution clears the count (SPEC §6).
//!
//! [`AuditGate`]: keeps audit volume sane. The same (key) is written at
//! most once per period, so a job swapping one secret towards one host a
//! thousand times a minute leaves one record a minute; keys are capped
//! ([`MAX_ENTRIES`], least recently used forgotten first) and a gate may
//! also cap the records of all keys together per period, so a flood of
//! refusals from many sources and hosts leaves a bounded trail.

use std::sync::Mutex;

use gatehouse_domain::clock::UnixTime;
pub use gatehouse_domain::failure_window::FailureWindow;
use gatehouse_domain::lru::Lru;

pub const FAILURE_LIMIT: usize = 20;
pub const FAILURE_WINDOW: i64 = 300;
/// Keys an audit gate remembers at most; a forgotten key errs towards
/// writing a record, never towards skipping a check.
pub const MAX_ENTRIES: usize = 10_000;
/// Refusal records written per minute at most, all sources together.
pub const REFUSAL_AUDITS_PER_MINUTE: u64 = 600;

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

/// At most one pass per key per `period` seconds, and at most
/// `per_period` passes of all keys together in each period.
pub struct AuditGate {
    period: i64,
    per_period: u64,
    state: Mutex<GateState>,
}

struct GateState {
    seen: Lru<String, UnixTime>,
    /// Start of the current global period and passes in it.
    period_start: UnixTime,
    passed: u64,
    /// Passes refused by the global cap, for the log.
    suppressed: u64,
}

impl AuditGate {
    /// Once per key per period, no global cap.
    pub fn new(period: i64) -> Self {
        Self::bounded(period, MAX_ENTRIES, u64::MAX)
    }

    /// Once per key per period, at most `max_keys` keys remembered and
    /// at most `per_period` passes a period overall.
    pub fn bounded(period: i64, max_keys: usize, per_period: u64) -> Self {
        Self {
            period,
            per_period,
            state: Mutex::new(GateState {
                seen: Lru::new(max_keys),
                period_start: UnixTime::MIN,
                passed: 0,
                suppressed: 0,
            }),
        }
    }

    /// True when `key` has not passed within the period and the global
    /// budget allows (and records it).
    pub fn pass(&self, key: &str, now: UnixTime) -> bool {
        let (period, per_period) = (self.period, self.per_period);
        locked(&self.state, |st| {
            if st.seen.get_mut(key).is_some_and(|t| *t > now - period) {
                return false;
            }
            if now >= st.period_start.saturating_add(period) {
                if st.suppressed > 0 {
                    tracing::warn!(
                        suppressed = st.suppressed,
                        "audit records skipped last period: over the global cap"
                    );
                }
                st.period_start = now;
                st.passed = 0;
                st.suppressed = 0;
            }
            if st.passed >= per_period {
                st.suppressed += 1;
                return false;
            }
            st.passed += 1;
            *st.seen.get_or_insert_with(key.to_string(), || now) = now;
            true
        })
    }

    /// Keys remembered now (never above the cap).
    pub fn len(&self) -> usize {
        locked(&self.state, |st| st.seen.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    #[test]
    fn a_flood_of_keys_stays_within_the_cap_and_the_global_budget() {
        let g = AuditGate::bounded(60, 1_000, 600);
        let mut passed = 0;
        for i in 0..100_000 {
            if g.pass(
                &format!("10.0.{}.{}|denied:ssrf|h{i}", i / 256, i % 256),
                100,
            ) {
                passed += 1;
            }
            assert!(g.len() <= 1_000);
        }
        assert_eq!(passed, 600, "one period: the global budget");
        // The next period has a fresh budget.
        assert!(g.pass("new", 160));
    }

    #[test]
    fn a_repeated_key_is_not_forgotten_before_quiet_ones() {
        let g = AuditGate::bounded(60, 10, u64::MAX);
        assert!(g.pass("busy", 100));
        for i in 0..1_000 {
            assert!(g.pass(&format!("k{i}"), 100));
            // The busy key keeps being asked about: it stays remembered.
            assert!(!g.pass("busy", 100), "after {i}");
        }
    }
}
