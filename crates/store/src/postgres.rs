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
/// Pooled connections held by `LISTEN` for as long as the store lives.
const LISTENERS: u32 = 2;

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
    pub async fn open(url: &str, settings: &crate::PoolSettings) -> crate::error::Result<Self> {
        use sqlx::Connection;
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| crate::error::StoreError::Url(e.to_string()))?;
        // Migrations run on a connection of their own, without the
        // statement timeout: the migrator waits on an advisory lock (so
        // replicas starting at once apply each migration exactly once),
        // and a migration may legitimately take long.
        let mut migrating = sqlx::PgConnection::connect_with(&options).await?;
        migrator(Dialect::Postgres).run(&mut migrating).await?;
        migrating.close().await?;
        let timeout_ms = settings.statement_timeout.as_millis().max(1);
        // The two listeners (revocations, approvals) each hold one pooled
        // connection for good: they get room of their own, so
        // `max_connections` is what queries have.
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1) + LISTENERS)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.options([("statement_timeout", timeout_ms)]))
            .await?;
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

crate::sql_egress_ca::sql_egress_ca!(PgStore);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn pooled_statements_stop_at_the_statement_timeout() {
        let url = crate::test_support::fresh_postgres_url().await;
        let settings = crate::PoolSettings {
            max_connections: 3,
            statement_timeout: Duration::from_millis(200),
        };
        let store = PgStore::open(&url, &settings).await.unwrap();
        let slow = sqlx::query("SELECT pg_sleep(2)").execute(&store.pool).await;
        let err = slow.expect_err("cancelled by the server").to_string();
        assert!(err.contains("statement timeout"), "{err}");
        let quick = sqlx::query("SELECT pg_sleep(0.01)")
            .execute(&store.pool)
            .await;
        assert!(quick.is_ok(), "{quick:?}");
        assert_eq!(store.pool.options().get_max_connections(), 3 + LISTENERS);
    }
}
