//! A global budget: at most `limit` events per fixed window of `window`
//! seconds, whoever causes them.
//!
//! Per-source limits stop one noisy source; they do not stop ten
//! thousand sources each staying under its own limit. What must stay
//! bounded in total (audit rows written for refused tokens) takes a slot
//! here as well; beyond the budget the event is only counted. The caller
//! passes the time, so tests move a clock instead of sleeping. Constant
//! memory: one window start and one count.

use std::sync::Mutex;

use crate::clock::UnixTime;

pub struct RateBudget {
    limit: u64,
    window: i64,
    state: Mutex<(UnixTime, u64)>,
}

impl RateBudget {
    pub fn new(limit: u64, window: i64) -> Self {
        Self {
            limit,
            window: window.max(1),
            state: Mutex::new((UnixTime::MIN, 0)),
        }
    }

    /// Takes one slot at `now`; `false` when the window's budget is spent.
    pub fn take(&self, now: UnixTime) -> bool {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            // A poisoned lock still holds a usable count.
            Err(poisoned) => poisoned.into_inner(),
        };
        let (start, used) = &mut *guard;
        if now >= start.saturating_add(self.window) || now < *start {
            *start = now;
            *used = 0;
        }
        if *used >= self.limit {
            return false;
        }
        *used += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_by_everyone_and_refills_each_window() {
        let b = RateBudget::new(3, 60);
        assert!(b.take(100));
        assert!(b.take(101));
        assert!(b.take(159));
        assert!(!b.take(159), "spent for this window");
        assert!(b.take(160), "a new window");
        assert!(b.take(160));
        assert!(b.take(161));
        assert!(!b.take(219));
    }

    #[test]
    fn a_clock_that_steps_back_starts_a_fresh_window() {
        let b = RateBudget::new(1, 60);
        assert!(b.take(1000));
        assert!(!b.take(1001));
        assert!(b.take(900));
    }
}
