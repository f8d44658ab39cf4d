//! The background half of approvals, on every replica: pending requests
//! past their time to live become `expired`, and approved requests that
//! have not run (the server stopped between decision and execution, or a
//! run hit a store outage) are run. Replicas may race here freely: the
//! store runs each approved request exactly once.
//!
//! An `executing` approval (claimed by an executor that calls out) is
//! never run here: its outside call may have happened. If it is still
//! `executing` [`INTERRUPTED_AFTER`] seconds after its claim, its executor
//! died mid-way; it becomes `failed` with the reason "interrupted" and a
//! human asks again if they still want it. A live executor never takes
//! that long: each outside call has a 10 s timeout.

use std::time::Duration;

use tokio::sync::watch;

use super::execute_approved;
use crate::state::AppState;

const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
const BATCH: i64 = 50;
/// Seconds after its claim that an `executing` approval counts as
/// interrupted.
pub const INTERRUPTED_AFTER: i64 = 600;

pub async fn run(st: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        sweep(&st).await;
    }
}

/// Marks pending approvals past their time to live `expired`; also run
/// by handlers before they show a status, so none is shown stale.
pub async fn expire_due(st: &AppState) {
    match st.store.expire_approvals(st.now()).await {
        // The live inbox drops them at once.
        Ok(expired) => {
            for a in expired {
                st.approval_feed.announce(st.store.as_ref(), &a.id).await;
            }
        }
        Err(e) => tracing::warn!("approval expiry failed: {e}"),
    }
}

/// One pass: expiry, then every approved request left over. `start`
/// runs one before serving, so a restart finishes what was approved.
pub async fn sweep(st: &AppState) {
    sweep_once(st).await;
    // Counted when a pass has ended, so an observer that sees the count
    // move twice knows a whole pass ran after it looked.
    st.metrics.count_sweep();
}

async fn sweep_once(st: &AppState) {
    expire_due(st).await;
    let now = st.now();
    if let Err(e) = st
        .store
        .fail_interrupted(now - INTERRUPTED_AFTER, now)
        .await
    {
        tracing::warn!("failing interrupted executions failed: {e}");
    }
    let approved = match st.store.approved_approvals(BATCH).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("reading approved requests failed: {e}");
            return;
        }
    };
    for approval in approved {
        if let Err(e) = execute_approved(st, &approval).await {
            tracing::warn!(approval = %approval.id, "running an approved request failed: {}", e.message());
        }
        st.approval_feed
            .announce(st.store.as_ref(), &approval.id)
            .await;
    }
}
