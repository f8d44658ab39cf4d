//! When what a job may use changes: the binding epoch.
//!
//! A job's egress view (its secrets' values, host bindings and `inject`
//! rules, its placeholders, its agent's egress policy, whether it is
//! live) is read from the store in one query. Readers that keep such a
//! view (the egress proxy) stamp it with the [`BindingEpoch`] they saw
//! *before* the read and trust it only while the epoch is still the same.
//!
//! The epoch moves after every store write that can change a view (every
//! gated action, an upstream credential installed or switched, a job
//! deleted, an agent's placeholders dropped), once the write is committed
//! or failed, so a view read before the write can never pass for one read
//! after it:
//! - SQLite: replicas of one file are one process; every store opened on
//!   the same file shares one epoch, moved synchronously by the writer.
//! - PostgreSQL: the writer moves its own epoch synchronously and sends a
//!   `NOTIFY gatehouse_bindings` (payload: the owner, informational); a
//!   listener on every replica moves that replica's epoch on each
//!   notification. While the listener is not listening (starting,
//!   reconnecting after a lost connection) the epoch is unconfirmed and
//!   [`BindingEpoch::current`] is `None`: nothing kept may be trusted, and
//!   readers go to the store every time (fail closed). Each (re)connection
//!   moves the epoch, since notifications sent meanwhile are lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;

pub(crate) const CHANNEL: &str = "gatehouse_bindings";

/// A counter that moves whenever a job's egress view may have changed,
/// and whether this process can vouch for it now.
#[derive(Clone, Debug)]
pub struct BindingEpoch(Arc<EpochState>);

#[derive(Debug)]
struct EpochState {
    value: AtomicU64,
    confirmed: AtomicBool,
}

impl BindingEpoch {
    fn new(confirmed: bool) -> Self {
        Self(Arc::new(EpochState {
            value: AtomicU64::new(0),
            confirmed: AtomicBool::new(confirmed),
        }))
    }

    /// The epoch now, or `None` when it cannot be confirmed (a view kept
    /// from before must not be used).
    pub fn current(&self) -> Option<u64> {
        // Confirmed is read after the value: a listener that loses its
        // connection clears `confirmed` before moving the value.
        let value = self.0.value.load(Ordering::SeqCst);
        self.0.confirmed.load(Ordering::SeqCst).then_some(value)
    }

    pub(crate) fn bump(&self) {
        self.0.value.fetch_add(1, Ordering::SeqCst);
    }

    fn set_confirmed(&self, confirmed: bool) {
        self.0.confirmed.store(confirmed, Ordering::SeqCst);
        self.bump();
    }
}

/// One epoch per SQLite file in this process.
static SQLITE_EPOCHS: LazyLock<Mutex<HashMap<String, BindingEpoch>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The epoch shared by every store of this process opened on `url`.
pub(crate) fn sqlite_epoch(url: &str) -> BindingEpoch {
    let mut map = match SQLITE_EPOCHS.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(url.to_string())
        .or_insert_with(|| BindingEpoch::new(true))
        .clone()
}

/// A PostgreSQL store's epoch: unconfirmed until its listener listens.
pub(crate) fn pg_epoch() -> BindingEpoch {
    BindingEpoch::new(false)
}

/// Whose views a gated action may change (the NOTIFY payload; every
/// replica moves its whole epoch anyway); `None` for an action that
/// changes no job's view (a gated MCP call's completion).
pub(crate) fn action_owner(action: &crate::GatedAction) -> Option<&str> {
    use crate::GatedAction as A;
    Some(match action {
        A::PutSecret(s) => s.owner.as_str(),
        A::MintToken(t) => t.owner.as_str(),
        A::CreateJob { job, .. } => job.owner.as_str(),
        A::PutMcpServer(m) => m.owner.as_str(),
        A::DeleteSecret { owner, .. }
        | A::DeleteAllJobs { owner }
        | A::DeprovisionOwner { owner, .. }
        | A::DeleteJob { owner, .. }
        | A::RetireUpstream { owner, .. }
        | A::SetAgentEgress { owner, .. }
        | A::SetAgentSecrets { owner, .. } => owner.as_str(),
        A::RecordMcpCall => return None,
    })
}

#[async_trait]
pub(crate) trait BindingEvents {
    /// After a write that may change a job's view (committed or not).
    async fn bindings_changed(&self, owner: &str);
    /// This store's epoch, its listener started on first use.
    fn epoch(&self) -> BindingEpoch;
}

#[async_trait]
impl BindingEvents for SqliteStore {
    async fn bindings_changed(&self, _owner: &str) {
        self.bindings.bump();
    }

    fn epoch(&self) -> BindingEpoch {
        self.bindings.clone()
    }
}

#[async_trait]
impl BindingEvents for PgStore {
    async fn bindings_changed(&self, owner: &str) {
        self.bindings.bump();
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(owner)
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            // Other replicas learn it from their listener's next
            // reconnection at worst; their kept views also age out.
            tracing::warn!("could not announce a binding change: {e}");
        }
    }

    fn epoch(&self) -> BindingEpoch {
        if !self
            .binding_watch_started
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let task = rt.spawn(listen(self.pool.clone(), self.bindings.clone()));
                    if let Ok(mut slot) = self.binding_watch.lock() {
                        *slot = Some(task.abort_handle());
                    }
                }
                // No runtime: never confirmed, every read goes to the store.
                Err(_) => self
                    .binding_watch_started
                    .store(false, std::sync::atomic::Ordering::SeqCst),
            }
        }
        self.bindings.clone()
    }
}

/// Moves `epoch` on every notification; unconfirmed while not listening.
async fn listen(pool: sqlx::PgPool, epoch: BindingEpoch) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("binding listener cannot connect: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!("binding listener cannot LISTEN: {e}");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(100);
        epoch.set_confirmed(true);
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => epoch.bump(),
                // The connection dropped: what was sent meanwhile is lost.
                Ok(None) => {
                    epoch.set_confirmed(false);
                    break;
                }
                Err(e) => {
                    tracing::warn!("binding listener failed: {e}");
                    epoch.set_confirmed(false);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unconfirmed_epoch_vouches_for_nothing_and_every_change_moves_it() {
        let e = BindingEpoch::new(false);
        assert_eq!(e.current(), None);
        e.set_confirmed(true);
        let first = e.current().unwrap();
        e.bump();
        assert_ne!(e.current(), Some(first));
        let before = e.current();
        e.set_confirmed(false);
        assert_eq!(e.current(), None);
        e.set_confirmed(true);
        assert_ne!(e.current(), before, "a reconnection moves the epoch");
    }

    #[test]
    fn stores_on_one_sqlite_file_share_their_epoch() {
        let a = sqlite_epoch("sqlite:///tmp/gatehouse-epoch-test-a.db");
        let b = sqlite_epoch("sqlite:///tmp/gatehouse-epoch-test-a.db");
        let other = sqlite_epoch("sqlite:///tmp/gatehouse-epoch-test-b.db");
        let seen = b.current();
        let other_seen = other.current();
        a.bump();
        assert_ne!(b.current(), seen);
        assert_eq!(other.current(), other_seen);
    }
}
