//! The PostgreSQL engine, for several replicas sharing one database.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

use crate::migrations::{migrator, Dialect};

pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Whether the one [`crate::GateKey`] was handed out.
    pub(crate) gate_key_taken: std::sync::atomic::AtomicBool,
    /// Moves when a job's egress view may have changed (`binding_events.rs`).
    pub(crate) bindings: crate::binding_events::BindingEpoch,
    pub(crate) binding_watch_started: std::sync::atomic::AtomicBool,
    pub(crate) binding_watch: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.binding_watch.lock() {
            if let Some(task) = slot.take() {
                task.abort();
            }
        }
    }
}

const REVOCATION_CHANNEL: &str = "gatehouse_revocations";

/// Listens on the revocation channel and forwards a wake-up per
/// notification. On a lost connection it reconnects (with backoff) and
/// sends one wake-up, since notifications sent meanwhile are gone.
async fn listen_for_revocations(
    store: &PgStore,
) -> Option<tokio::sync::mpsc::Receiver<Option<crate::model::Revocation>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let pool = store.pool.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("revocation listener cannot connect: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if let Err(e) = listener.listen(REVOCATION_CHANNEL).await {
                tracing::warn!("revocation listener cannot LISTEN: {e}");
                tokio::time::sleep(backoff).await;
                continue;
            }
            backoff = Duration::from_millis(100);
            if tx.send(None).await.is_err() {
                return;
            }
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => {
                        let revocation = crate::sql_store::decode_notification(n.payload());
                        if tx.send(revocation).await.is_err() {
                            return;
                        }
                    }
                    // The connection dropped; try_recv reconnects next time,
                    // but notifications in between are lost: wake a resync.
                    Ok(None) => {
                        if tx.send(None).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("revocation listener failed: {e}");
                        break;
                    }
                }
            }
        }
    });
    Some(rx)
}

impl PgStore {
    pub async fn open(url: &str) -> crate::error::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| crate::error::StoreError::Url(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        // The migrator takes an advisory lock, so replicas starting at
        // once apply each migration exactly once.
        migrator(Dialect::Postgres).run(&pool).await?;
        Ok(Self {
            pool,
            gate_key_taken: std::sync::atomic::AtomicBool::new(false),
            bindings: crate::binding_events::pg_epoch(),
            binding_watch_started: std::sync::atomic::AtomicBool::new(false),
            binding_watch: std::sync::Mutex::new(None),
        })
    }
}

crate::sql_store::sql_store!(
    PgStore,
    sqlx::Postgres,
    Engine::Postgres,
    "BEGIN",
    "SELECT pg_notify('gatehouse_revocations', $1)",
    listen_for_revocations
);

crate::sql_upstream::sql_upstream!(PgStore, sqlx::Postgres, Engine::Postgres);
