//! The freshness window for providers that sign a timestamp.
//!
//! A signed timestamp more than [`MAX_SKEW_SECS`] away from our clock is
//! refused in either direction: an old one is a replay, a future one is a
//! delivery signed ahead of time (or a clock we should not trust) that
//! would otherwise stay valid for longer than the replay memory lasts.

use super::error::WebhookError;
use crate::clock::UnixTime;

/// Slack's and Stripe's documented tolerance, applied to Discord too.
pub const MAX_SKEW_SECS: i64 = 300;

/// Accepts `signed_at` when it lies within [`MAX_SKEW_SECS`] of `now`.
pub fn check_freshness(signed_at: UnixTime, now: UnixTime) -> Result<(), WebhookError> {
    // i128 so that extreme values from either side cannot overflow.
    let skew = i128::from(now) - i128::from(signed_at);
    let clamp = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    if skew > i128::from(MAX_SKEW_SECS) {
        Err(WebhookError::Stale {
            skew_secs: clamp(skew),
        })
    } else if -skew > i128::from(MAX_SKEW_SECS) {
        Err(WebhookError::Future {
            skew_secs: clamp(-skew),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_700_000_000;

    #[test]
    fn timestamps_within_300s_either_way_are_fresh() {
        for d in [-300, -1, 0, 1, 300] {
            assert_eq!(check_freshness(NOW + d, NOW), Ok(()), "{d}");
        }
    }

    #[test]
    fn timestamp_older_than_300s_is_stale() {
        assert_eq!(
            check_freshness(NOW - 301, NOW),
            Err(WebhookError::Stale { skew_secs: 301 })
        );
    }

    #[test]
    fn timestamp_more_than_300s_ahead_is_future() {
        assert_eq!(
            check_freshness(NOW + 301, NOW),
            Err(WebhookError::Future { skew_secs: 301 })
        );
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        assert_eq!(
            check_freshness(i64::MIN, i64::MAX).unwrap_err().code(),
            "stale"
        );
        assert_eq!(
            check_freshness(i64::MAX, i64::MIN).unwrap_err().code(),
            "future"
        );
    }
}
