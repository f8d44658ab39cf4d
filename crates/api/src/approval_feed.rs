//! The feed behind the console's live inbox: every replica hears of
//! every approval created or decided on any replica. Locally an in-process
//! broadcast (at once); across replicas the store's approval wake-ups
//! (PostgreSQL NOTIFY), forwarded into the same broadcast. A message is
//! only an approval id: readers load it and check who may see it.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use gatehouse_store::Store;

/// Enough for a burst; a slow reader that lags is told to look again.
const CAPACITY: usize = 1024;

pub struct ApprovalFeed {
    tx: broadcast::Sender<String>,
}

impl Default for ApprovalFeed {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl ApprovalFeed {
    /// Tells this replica's listeners at once and the others through the
    /// store; never fails the request that changed the approval.
    pub async fn announce(&self, store: &dyn Store, id: &str) {
        let _ = self.tx.send(id.to_string());
        if let Err(e) = store.announce_approval(id).await {
            tracing::warn!(approval = %id, "announcing an approval to other replicas failed: {e}");
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }

    /// Forwards other replicas' announcements until `stop`.
    pub async fn relay(self: Arc<Self>, store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
        let Some(mut wakeups) = store.approval_wakeups().await else {
            return;
        };
        loop {
            tokio::select! {
                id = wakeups.recv() => match id {
                    Some(id) => { let _ = self.tx.send(id); }
                    None => return,
                },
                _ = stop.changed() => return,
            }
        }
    }
}
