//! Time is injected: every expiry, skew, TTL and rate-limit rule reads a
//! [`Clock`], so tests move time forward instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, UTC.
pub type UnixTime = i64;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// The wall clock moved by a fixed number of seconds: how a test skews one
/// replica's time against the others (`GATEHOUSE_TEST_CLOCK_OFFSET_SECONDS`,
/// read and guarded by the binary, never by the configuration).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock {
    pub offset_seconds: i64,
}

impl Clock for OffsetClock {
    fn now(&self) -> UnixTime {
        SystemClock.now().saturating_add(self.offset_seconds)
    }
}

/// A clock that only moves when told to; shared by cloning.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: UnixTime) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
    pub fn set(&self, now: UnixTime) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

/// RFC 3339 (UTC, second precision) rendering used in every API answer.
pub fn rfc3339(t: UnixTime) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(100);
        let shared = c.clone();
        c.advance(5);
        assert_eq!(shared.now(), 105);
        shared.set(7);
        assert_eq!(c.now(), 7);
    }

    #[test]
    fn an_offset_clock_runs_ahead_or_behind_the_wall_clock_by_its_offset() {
        let ahead = OffsetClock { offset_seconds: 20 }.now() - SystemClock.now();
        let behind = OffsetClock {
            offset_seconds: -20,
        }
        .now()
            - SystemClock.now();
        // The two reads may straddle a second boundary.
        assert!((19..=20).contains(&ahead), "{ahead}");
        assert!((-20..=-19).contains(&behind), "{behind}");
    }

    #[test]
    fn rfc3339_renders_utc_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    }
}
