//! The rotation tick. Each upstream, under this process's mutex and the
//! store's per-upstream lock (one replica at a time), goes through:
//!
//! 1. a pending token (a rotation that was minted and persisted but not
//!    switched, e.g. cut short by a crash) is verified with whoami and
//!    switched to, or queued for revocation if the upstream refuses it;
//! 2. otherwise, when a rotation is due (`last_rotation +
//!    rotate_every_seconds`), the current token is unexpired, and the
//!    owner is active (or `idle = keep_alive`): mint → persist pending →
//!    verify → switch;
//! 3. queued revocations whose time has come are tried with the current
//!    token; a failure backs off (5 s doubling, at most an hour) and shows
//!    in status; a token that lapsed first is marked expired.
//!
//! Every step reads the injected clock, so tests move time instead of
//! sleeping. The steps are separate transactions on purpose: a crash
//! after any of them leaves a state the next tick finishes (see the
//! crash test in `crates/gatehouse/tests/upstream_crash.rs`).

use std::time::Duration;

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::SecretBytes;
use gatehouse_store::{StoreError, UpstreamSlot, UpstreamState, UpstreamTokenState};
use tokio::sync::watch;

use super::driver::DriverError;
use super::{open_token, same_person, seal_token, secret_record, system_event, Upstream};
use crate::config::upstream::IdlePolicy;
use crate::error::ApiError;
use crate::state::{AppState, Inner};

/// How often the background task looks; decisions come from the clock.
pub const TICK: Duration = Duration::from_secs(1);

const BACKOFF_FIRST: i64 = 5;
const BACKOFF_MAX: i64 = 3600;

/// Seconds before retrying a revocation that failed `attempts` times.
pub fn backoff(attempts: i64) -> i64 {
    let shift = attempts.clamp(0, 16) as u32;
    (BACKOFF_FIRST << shift).min(BACKOFF_MAX)
}

/// Runs [`tick`] every [`TICK`] until `stop` changes. The first tick is
/// immediate, so a restart finishes an interrupted rotation at once.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        tick(&state).await;
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One pass over every upstream. Failures are logged and audited, never
/// propagated: one upstream's trouble must not stop another's rotation.
pub async fn tick(st: &Inner) {
    for upstream in st.upstreams.iter() {
        let _local = upstream.local.lock().await;
        let lock = match st.store.upstream_lock(&upstream.config.name).await {
            Ok(Some(lock)) => lock,
            // Another replica is rotating this upstream.
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(upstream = %upstream.config.name, "upstream lock unavailable: {e}");
                continue;
            }
        };
        if let Err(e) = step(st, upstream).await {
            tracing::warn!(upstream = %upstream.config.name, "upstream rotation step failed: {e}");
        }
        if let Err(e) = st.store.upstream_unlock(lock).await {
            tracing::warn!(upstream = %upstream.config.name, "upstream unlock failed: {e}");
        }
    }
}

enum StepError {
    Api(ApiError),
    Store(StoreError),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api(e) => write!(f, "{e:?}"),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<ApiError> for StepError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

async fn step(st: &Inner, upstream: &Upstream) -> Result<(), StepError> {
    let c = &upstream.config;
    let Some(state) = st.store.upstream_state(&c.name).await? else {
        return Ok(());
    };
    // Bootstrapped for someone else (the configuration changed owner):
    // that token is not this owner's to use.
    if !same_person(state.owner.as_str(), c.owner.as_str()) {
        return Ok(());
    }
    let now = st.now();
    if now < setback_until(upstream) {
        // The upstream failed lately: wait out the backoff, so an outage
        // costs a few calls and audit records, not one a second.
    } else if let Some(pending) = &state.pending {
        finish_pending(st, upstream, pending, None).await?;
    } else if rotation_due(st, upstream, &state, now).await? {
        rotate(st, upstream, &state).await?;
    }
    retry_revocations(st, upstream).await
}

fn setback_until(upstream: &Upstream) -> UnixTime {
    upstream.setback.lock().map_or(0, |s| s.1)
}

/// Counts an upstream failure of mint or verify and sets the next try.
fn set_back(upstream: &Upstream, now: UnixTime) {
    if let Ok(mut s) = upstream.setback.lock() {
        *s = (s.0 + 1, now + backoff(s.0));
    }
}

fn clear_setback(upstream: &Upstream) {
    if let Ok(mut s) = upstream.setback.lock() {
        *s = (0, 0);
    }
}

async fn rotation_due(
    st: &Inner,
    upstream: &Upstream,
    state: &UpstreamState,
    now: UnixTime,
) -> Result<bool, StepError> {
    let c = &upstream.config;
    let Some(current) = &state.current else {
        return Ok(false);
    };
    if current.expires_at <= now {
        // Lapsed: nothing can mint with it; the owner bootstraps again.
        return Ok(false);
    }
    let due = state
        .last_rotation
        .is_none_or(|t| now >= t + c.rotate_every_seconds);
    if !due {
        return Ok(false);
    }
    Ok(match c.idle {
        IdlePolicy::KeepAlive => true,
        IdlePolicy::Expire => st.store.owner_active(&c.owner, now).await?,
    })
}

/// mint (upstream) → persist pending (store) → [`finish_pending`].
async fn rotate(st: &Inner, upstream: &Upstream, state: &UpstreamState) -> Result<(), StepError> {
    let c = &upstream.config;
    let Some(current) = &state.current else {
        return Ok(());
    };
    let auth = open_token(st, &c.owner, &c.name, current).await?;
    let minted = match upstream.driver.mint(&auth, c.lifetime_seconds).await {
        Ok(m) => m,
        Err(e) => {
            set_back(upstream, st.now());
            audit(
                st,
                upstream,
                "upstream.mint",
                &c.name,
                &format!("failed: {e}"),
            )
            .await;
            return Ok(());
        }
    };
    let now = st.now();
    let expires_at = minted.expires_at.unwrap_or(now + c.lifetime_seconds);
    let slot = seal_token(
        st,
        &c.owner,
        &c.name,
        &minted.token_id,
        &minted.value,
        expires_at,
    )
    .await?;
    let event = system_event(
        &c.owner,
        "upstream.mint",
        &format!("{}:{}", c.name, minted.token_id),
        "ok",
    );
    if let Err(e) = st
        .store
        .upstream_persist_pending(&c.name, &current.token_id, &slot, event, now)
        .await
    {
        // Unrecorded, the token would live to its expiry unknown: take it
        // back now, with itself.
        let undone = upstream
            .driver
            .revoke(&minted.value, &minted.token_id)
            .await;
        audit(
            st,
            upstream,
            "upstream.revoke",
            &format!("{}:{}", c.name, minted.token_id),
            &match undone {
                Ok(()) => "ok (not persisted)".to_string(),
                Err(r) => format!("failed: {r} (not persisted; lapses at its expiry)"),
            },
        )
        .await;
        return Err(e.into());
    }
    finish_pending(st, upstream, &slot, Some(minted.value)).await
}

/// verify (upstream whoami with the new token alone) → switch (store,
/// with the secret) — or discard when the upstream disowns it.
async fn finish_pending(
    st: &Inner,
    upstream: &Upstream,
    pending: &UpstreamSlot,
    value: Option<SecretBytes>,
) -> Result<(), StepError> {
    let c = &upstream.config;
    let value = match value {
        Some(v) => v,
        None => open_token(st, &c.owner, &c.name, pending).await?,
    };
    let target = format!("{}:{}", c.name, pending.token_id);
    let verdict = upstream.driver.whoami(&value).await;
    let now = st.now();
    match verdict {
        Ok(identity) if same_person(&identity.user, c.owner.as_str()) => {
            let secret = secret_record(st, c, &value, now).await?;
            let event = system_event(&c.owner, "upstream.rotate", &target, "ok");
            st.store
                .upstream_switch(&c.name, &pending.token_id, &secret, event, now)
                .await?;
            clear_setback(upstream);
            Ok(())
        }
        Ok(_) | Err(DriverError::Refused(_)) => {
            set_back(upstream, now);
            let outcome = match verdict {
                Ok(_) => "failed: identity_mismatch",
                _ => "failed: the upstream refused the new token",
            };
            let event = system_event(&c.owner, "upstream.rotate", &target, outcome);
            st.store
                .upstream_discard_pending(&c.name, &pending.token_id, event, now)
                .await?;
            Ok(())
        }
        Err(e) if pending.expires_at <= now => {
            set_back(upstream, now);
            let event = system_event(
                &c.owner,
                "upstream.rotate",
                &target,
                &format!("failed: {e}"),
            );
            st.store
                .upstream_discard_pending(&c.name, &pending.token_id, event, now)
                .await?;
            Ok(())
        }
        // Unreachable for now: keep it pending, try again after a backoff.
        Err(e) => {
            set_back(upstream, now);
            audit(
                st,
                upstream,
                "upstream.rotate",
                &target,
                &format!("deferred: {e}"),
            )
            .await;
            Ok(())
        }
    }
}

async fn retry_revocations(st: &Inner, upstream: &Upstream) -> Result<(), StepError> {
    let c = &upstream.config;
    let now = st.now();
    let due: Vec<_> = st
        .store
        .upstream_open_tokens(&c.name)
        .await?
        .into_iter()
        .filter(|t| {
            t.state == UpstreamTokenState::PendingRevoke
                && t.next_attempt_at.is_none_or(|at| at <= now)
        })
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    let current = st
        .store
        .upstream_state(&c.name)
        .await?
        .and_then(|s| s.current)
        .filter(|t| t.expires_at > now);
    let auth = match &current {
        Some(slot) => Some(open_token(st, &c.owner, &c.name, slot).await?),
        None => None,
    };
    for t in due {
        let target = format!("{}:{}", c.name, t.token_id);
        if t.expires_at.is_some_and(|e| e <= now) {
            let event = system_event(
                &c.owner,
                "upstream.revoke",
                &target,
                "expired before revocation",
            );
            st.store
                .upstream_revoke_done(
                    &c.name,
                    &t.token_id,
                    UpstreamTokenState::Expired,
                    event,
                    now,
                )
                .await?;
            continue;
        }
        // With no valid token Gatehouse cannot revoke anything: it waits
        // (shown in status) for the next bootstrap rather than filling the
        // audit log with attempts that cannot succeed.
        let Some(auth) = &auth else { continue };
        let result = upstream.driver.revoke(auth, &t.token_id).await;
        let now = st.now();
        match result {
            // Already gone: an earlier attempt went through but its answer
            // was lost (a crash, a timeout).
            Ok(()) | Err(DriverError::NotFound) => {
                let outcome = if result.is_ok() {
                    "ok"
                } else {
                    "ok: already gone"
                };
                let event = system_event(&c.owner, "upstream.revoke", &target, outcome);
                st.store
                    .upstream_revoke_done(
                        &c.name,
                        &t.token_id,
                        UpstreamTokenState::Revoked,
                        event,
                        now,
                    )
                    .await?;
            }
            Err(e) => {
                let error = e.to_string();
                let event = system_event(
                    &c.owner,
                    "upstream.revoke",
                    &target,
                    &format!("failed: {error}"),
                );
                st.store
                    .upstream_revoke_failed(
                        &c.name,
                        &t.token_id,
                        now + backoff(t.attempts),
                        &error,
                        event,
                        now,
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

/// Appends an audit record on its own (for acts with no state change).
pub(crate) async fn audit(
    st: &Inner,
    upstream: &Upstream,
    action: &str,
    target: &str,
    outcome: &str,
) {
    let event = system_event(&upstream.config.owner, action, target, outcome);
    if let Err(e) = st.store.append_audit(event, st.now()).await {
        tracing::warn!("audit append failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn revocation_retries_back_off_to_an_hour() {
        assert_eq!(backoff(0), 5);
        assert_eq!(backoff(1), 10);
        assert_eq!(backoff(3), 40);
        assert_eq!(backoff(9), 2560);
        assert_eq!(backoff(10), 3600);
        assert_eq!(backoff(i64::MAX), 3600);
    }
}
