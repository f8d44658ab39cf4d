//! The embedded SQLite engine (the default).

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

use crate::migrations::{migrator, Dialect};

pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// Whether the one [`crate::GateKey`] was handed out.
    pub(crate) gate_key_taken: std::sync::atomic::AtomicBool,
    /// Shared by every store of this process on the same file
    /// (`binding_events.rs`).
    pub(crate) bindings: crate::binding_events::BindingEpoch,
}

impl SqliteStore {
    pub async fn open(url: &str, settings: &crate::PoolSettings) -> crate::error::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| crate::error::StoreError::Url(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(settings.statement_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        migrator(Dialect::Sqlite).run(&pool).await?;
        Ok(Self {
            pool,
            gate_key_taken: std::sync::atomic::AtomicBool::new(false),
            bindings: crate::binding_events::sqlite_epoch(url),
        })
    }
}

/// SQLite has no push channel: replicas of one file are one process.
async fn no_wakeups(
    _: &SqliteStore,
) -> Option<tokio::sync::mpsc::Receiver<Option<crate::model::Revocation>>> {
    None
}

crate::sql_store::sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    Engine::Sqlite,
    "BEGIN IMMEDIATE",
    "SELECT $1",
    no_wakeups
);

crate::sql_upstream::sql_upstream!(SqliteStore, sqlx::Sqlite, Engine::Sqlite);

crate::sql_egress_ca::sql_egress_ca!(SqliteStore);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn pool_size_and_busy_timeout_come_from_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::PoolSettings {
            max_connections: 3,
            statement_timeout: Duration::from_millis(1234),
        };
        let store = SqliteStore::open(&crate::test_support::sqlite_url(dir.path()), &settings)
            .await
            .unwrap();
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(busy, 1234);
        assert_eq!(store.pool.options().get_max_connections(), 3);
    }
}
