//! Failure counting per source address for guessable endpoints (claim,
//! login) and for refused-token audit records: the domain's one counter.
//!
//! Refused tokens are audited through [`RefusalAudit`]: at most
//! [`REFUSAL_AUDITS_PER_SOURCE`] rows a minute per source and at most
//! [`REFUSAL_AUDITS_PER_MINUTE`] in total, whatever the number of
//! sources; the rest are only counted (`/metrics`). The global budget is
//! taken before a source is remembered, so hostile traffic from many
//! addresses neither floods the audit chain nor grows the per-source map
//! faster than the budget lets rows through.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::rate_budget::RateBudget;

pub use gatehouse_domain::failure_window::FailureWindow as FailureLimiter;

/// Audit rows for refused tokens from one source, per minute.
pub const REFUSAL_AUDITS_PER_SOURCE: usize = 10;
/// Audit rows for refused tokens from all sources together, per minute.
pub const REFUSAL_AUDITS_PER_MINUTE: u64 = 120;

/// Decides which refused token uses get an audit row.
pub struct RefusalAudit {
    per_source: FailureLimiter,
    total: RateBudget,
    /// Refusals not audited because a limit was reached.
    unaudited: AtomicU64,
}

impl Default for RefusalAudit {
    fn default() -> Self {
        Self {
            per_source: FailureLimiter::new(REFUSAL_AUDITS_PER_SOURCE, 60),
            total: RateBudget::new(REFUSAL_AUDITS_PER_MINUTE, 60),
            unaudited: AtomicU64::new(0),
        }
    }
}

impl RefusalAudit {
    /// Whether this refusal from `source` is written to the audit log.
    pub fn admit(&self, source: IpAddr, now: UnixTime) -> bool {
        if self.per_source.blocked_for(source, now).is_some() || !self.total.take(now) {
            self.unaudited.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.per_source.record_failure(source, now);
        true
    }

    /// Refusals counted but not audited, for `/metrics`.
    pub fn unaudited(&self) -> u64 {
        self.unaudited.load(Ordering::Relaxed)
    }
}
