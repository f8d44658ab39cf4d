//! The timer behind the slow-client rule (SPEC §6: a request head must
//! arrive within `server.header_timeout_seconds`), for both listeners.
//!
//! The rule itself is hyper's `header_read_timeout`: the deadline starts
//! when the server begins waiting for a head (the connection opened, or
//! the previous answer was sent) and the connection is closed when it
//! passes first. Hyper asks its timer for a new sleep for every request.
//! On tokio's timer that is a registration in the runtime's one shared
//! timer wheel, under its lock, and a removal once the head is in: two
//! lock round trips that the runtime's other worker, parking on the same
//! driver, contends for, on every request (measured: about 15 µs of a
//! 130 µs proxied request on a 2-core machine).
//!
//! [`HeadTimer`] serves one connection and keeps one alarm in tokio's
//! wheel for it. A deadline hyper asks for costs no wheel operation: the
//! alarm stays set for an earlier deadline (deadlines of one connection
//! only move later), and when it goes off early, the deadline waiting
//! then is checked and the alarm set again, for it. Deadlines are exact;
//! the alarm moves at most once per deadline that actually waits that
//! long, not once per request.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A hyper timer for one connection (give each connection its own: the
/// alarm wakes one waiter).
#[derive(Clone, Default)]
pub struct HeadTimer {
    alarm: Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>,
}

impl HeadTimer {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Tokio's clock, as hyper's deadlines are read against it.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(now() + duration)
    }

    fn now(&self) -> Instant {
        now()
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Deadline {
            at: deadline,
            alarm: self.alarm.clone(),
        })
    }
}

/// One deadline hyper waits for.
struct Deadline {
    at: Instant,
    alarm: Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>,
}

impl hyper::rt::Sleep for Deadline {}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let at = tokio::time::Instant::from_std(self.at);
        if tokio::time::Instant::now() >= at {
            return Poll::Ready(());
        }
        let Ok(mut alarm) = self.alarm.lock() else {
            // Poisoned: no alarm can be trusted; time the head out now
            // rather than never.
            return Poll::Ready(());
        };
        let alarm = alarm.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if alarm.deadline() > at {
            alarm.as_mut().reset(at);
        }
        // Set for an earlier deadline and gone off: set it for this one.
        // Polled again, it registers this task's waker.
        while alarm.as_mut().poll(cx).is_ready() {
            if alarm.deadline() >= at {
                return Poll::Ready(());
            }
            alarm.as_mut().reset(at);
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;

    /// Polls `sleep` once: whether it is still waiting.
    async fn waits(sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>) -> bool {
        std::future::poll_fn(|cx| Poll::Ready(sleep.as_mut().poll(cx).is_pending())).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_passes_when_it_is_due_and_not_before() {
        let timer = HeadTimer::new();
        let start = tokio::time::Instant::now();
        let mut sleep = timer.sleep(Duration::from_secs(10));
        assert!(waits(&mut sleep).await);
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(waits(&mut sleep).await);
        sleep.await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_is_kept_after_the_alarm_set_for_an_earlier_one_goes_off() {
        let timer = HeadTimer::new();
        let start = tokio::time::Instant::now();
        // The first request's deadline sets the alarm, then its head comes
        // in (the sleep is dropped, the alarm stays at +10 s).
        let mut first = timer.sleep(Duration::from_secs(10));
        assert!(waits(&mut first).await);
        drop(first);
        tokio::time::advance(Duration::from_secs(4)).await;
        // The next head's deadline is +14 s: the alarm going off at +10 s
        // does not end it.
        let second = timer.sleep(Duration::from_secs(10));
        second.await;
        assert_eq!(start.elapsed(), Duration::from_secs(14));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_moves_the_alarm_forward() {
        let timer = HeadTimer::new();
        let start = tokio::time::Instant::now();
        let mut late = timer.sleep(Duration::from_secs(30));
        assert!(waits(&mut late).await);
        drop(late);
        timer.sleep(Duration::from_secs(5)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }
}
