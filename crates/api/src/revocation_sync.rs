//! Keeps the node's revocation view in step with the store.
//!
//! - Incremental: revocations with an id above the last applied one, every
//!   `POLL` and at once on a wake-up (PostgreSQL NOTIFY from any replica).
//!   Revocation ids are handed out in commit order (see the store), so the
//!   incremental read never skips one.
//! - Full resync every `FULL_RESYNC` and after any failure: NOTIFY is not
//!   durable and a connection can drop, so the view is rebuilt from the
//!   store's live revocations regardless.
//! - Each successful read confirms the view; a view left unconfirmed past
//!   `revocation.max_staleness_seconds` refuses every token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use gatehouse_domain::clock::Clock;
use gatehouse_store::{Revocation, Store, StoreError};

use crate::keys::longest_token_lifetime;
use crate::metrics::Metrics;
use crate::revocation::Revocations;

pub const POLL: Duration = Duration::from_millis(500);
pub const FULL_RESYNC: Duration = Duration::from_secs(10);
const SWEEP: Duration = Duration::from_secs(600);

/// Loads every live revocation into the view and confirms it.
pub async fn full_sync(
    view: &Revocations,
    store: &dyn Store,
    clock: &dyn Clock,
) -> Result<(), StoreError> {
    let now = clock.now();
    for r in store.live_revocations(now).await? {
        view.apply(&r);
    }
    view.drop_expired(now, longest_token_lifetime());
    view.mark_confirmed();
    Ok(())
}

/// Applies a revocation this node had not seen, noting how long after
/// its timestamp it arrived (the propagation lag, in whole seconds).
fn apply_new(view: &Revocations, r: &Revocation, clock: &dyn Clock, metrics: &Metrics) {
    if r.id > view.last_id() {
        metrics.revocation_applied(clock.now() - r.not_before);
    }
    view.apply(r);
}

async fn incremental_sync(
    view: &Revocations,
    store: &dyn Store,
    clock: &dyn Clock,
    metrics: &Metrics,
) -> Result<(), StoreError> {
    for r in store.revocations_since(view.last_id()).await? {
        apply_new(view, &r, clock, metrics);
    }
    view.mark_confirmed();
    Ok(())
}

/// The next push from another replica; pending forever without a channel.
async fn next_wakeup(rx: &mut Option<mpsc::Receiver<Option<Revocation>>>) -> Option<Revocation> {
    match rx {
        Some(r) => match r.recv().await {
            Some(message) => message,
            None => {
                *rx = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

pub async fn run(
    view: Revocations,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    let mut wakeups = store.revocation_wakeups().await;
    let mut last_full = Instant::now();
    let mut last_sweep = Instant::now();
    let mut need_full = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            pushed = next_wakeup(&mut wakeups) => {
                // Applied before any read: this is the sub-millisecond path.
                // The incremental read below still runs, so nothing depends
                // on the push having arrived.
                if let Some(r) = pushed {
                    apply_new(&view, &r, clock.as_ref(), &metrics);
                }
            }
            _ = stop.changed() => return,
        }
        let result = if need_full || last_full.elapsed() >= FULL_RESYNC {
            last_full = Instant::now();
            full_sync(&view, store.as_ref(), clock.as_ref()).await
        } else {
            incremental_sync(&view, store.as_ref(), clock.as_ref(), &metrics).await
        };
        match result {
            Ok(()) => need_full = false,
            Err(e) => {
                need_full = true;
                tracing::warn!(
                    "revocation sync failed (tokens are refused once the view is stale): {e}"
                );
            }
        }
        if last_sweep.elapsed() >= SWEEP {
            last_sweep = Instant::now();
            if let Err(e) = store.sweep_revocations(clock.now()).await {
                tracing::warn!("revocation sweep failed: {e}");
            }
        }
    }
}
