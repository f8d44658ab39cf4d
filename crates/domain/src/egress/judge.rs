//! The egress judge's bookkeeping: verdict cache and circuit breaker.
//! Pure: the caller passes `now` and does the asking.
//!
//! - A verdict about (job, method, host) is reused for [`VERDICT_TTL`]
//!   seconds.
//! - A timeout or error denies and counts as a failure; [`BREAKER_FAILURES`]
//!   failures in a row open the breaker for [`BREAKER_OPEN`] seconds,
//!   during which every uncached question is denied without asking. The
//!   first question after that is asked again (half-open); one more
//!   failure re-opens it at once, an answer closes it.
//! - Failures are not cached: the next question asks again (unless the
//!   breaker is open).

use std::collections::HashMap;

use crate::clock::UnixTime;

pub const VERDICT_TTL: i64 = 300;
pub const BREAKER_FAILURES: u32 = 5;
pub const BREAKER_OPEN: i64 = 30;
/// Verdicts kept at most; beyond it expired ones are dropped, then all.
const MAX_VERDICTS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JudgeKey {
    pub job: String,
    pub method: String,
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allow: bool,
    pub reason: String,
}

/// What to do with a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Answered within the TTL.
    Cached(Verdict),
    /// The breaker is open: deny without asking.
    Open,
    /// Ask the judge, then report [`JudgeBook::answered`] or
    /// [`JudgeBook::failed`].
    Ask,
}

#[derive(Debug, Default)]
pub struct JudgeBook {
    failures_in_row: u32,
    open_until: Option<UnixTime>,
    verdicts: HashMap<JudgeKey, (Verdict, UnixTime)>,
}

impl JudgeBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn next(&mut self, key: &JudgeKey, now: UnixTime) -> Next {
        if let Some((verdict, expires)) = self.verdicts.get(key) {
            if *expires > now {
                return Next::Cached(verdict.clone());
            }
            self.verdicts.remove(key);
        }
        match self.open_until {
            Some(until) if until > now => Next::Open,
            _ => Next::Ask,
        }
    }

    pub fn answered(&mut self, key: JudgeKey, verdict: Verdict, now: UnixTime) {
        self.failures_in_row = 0;
        self.open_until = None;
        if self.verdicts.len() >= MAX_VERDICTS {
            self.verdicts.retain(|_, (_, expires)| *expires > now);
            if self.verdicts.len() >= MAX_VERDICTS {
                self.verdicts.clear();
            }
        }
        self.verdicts.insert(key, (verdict, now + VERDICT_TTL));
    }

    /// A timeout or error. Returns true when this failure opened the
    /// breaker.
    pub fn failed(&mut self, now: UnixTime) -> bool {
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        if self.failures_in_row >= BREAKER_FAILURES {
            let was_open = self.open_until.is_some_and(|u| u > now);
            self.open_until = Some(now + BREAKER_OPEN);
            return !was_open;
        }
        false
    }

    pub fn is_open(&self, now: UnixTime) -> bool {
        self.open_until.is_some_and(|u| u > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: &str) -> JudgeKey {
        JudgeKey {
            job: "j1".into(),
            method: "GET".into(),
            host: host.into(),
        }
    }

    fn allow() -> Verdict {
        Verdict {
            allow: true,
            reason: "ok".into(),
        }
    }

    #[test]
    fn verdicts_are_cached_for_five_minutes() {
        let mut b = JudgeBook::new();
        assert_eq!(b.next(&key("a"), 1000), Next::Ask);
        b.answered(key("a"), allow(), 1000);
        assert_eq!(b.next(&key("a"), 1299), Next::Cached(allow()));
        assert_eq!(b.next(&key("b"), 1299), Next::Ask);
        assert_eq!(b.next(&key("a"), 1300), Next::Ask);
    }

    #[test]
    fn five_failures_in_a_row_open_the_breaker_for_thirty_seconds() {
        let mut b = JudgeBook::new();
        for i in 0..4 {
            assert!(!b.failed(1000 + i));
            assert_eq!(b.next(&key("a"), 1000 + i), Next::Ask);
        }
        assert!(b.failed(1004));
        assert_eq!(b.next(&key("a"), 1004), Next::Open);
        assert_eq!(b.next(&key("a"), 1033), Next::Open);
        assert_eq!(b.next(&key("a"), 1034), Next::Ask);
        // Half-open: one more failure re-opens at once.
        b.failed(1034);
        assert_eq!(b.next(&key("a"), 1035), Next::Open);
    }

    #[test]
    fn an_answer_resets_the_failure_count_and_cached_verdicts_survive_an_open_breaker() {
        let mut b = JudgeBook::new();
        b.answered(key("cached"), allow(), 1000);
        for i in 0..4 {
            b.failed(1000 + i);
        }
        b.answered(key("x"), allow(), 1004);
        for i in 0..4 {
            assert!(!b.failed(1005 + i));
        }
        assert_eq!(b.next(&key("y"), 1009), Next::Ask);
        b.failed(1009);
        assert_eq!(b.next(&key("y"), 1010), Next::Open);
        assert_eq!(b.next(&key("cached"), 1010), Next::Cached(allow()));
    }
}
