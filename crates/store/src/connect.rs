//! Choosing the engine: once, from the URL scheme. An unknown scheme is an
//! error, never a silently created SQLite file.

use std::sync::Arc;

use crate::error::{Result, StoreError};
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// How a store uses its database (`[database]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections the pool opens for queries at most (PostgreSQL: per
    /// replica, plus the two `LISTEN` connections; SQLite: readers and the
    /// writer).
    pub max_connections: u32,
    /// PostgreSQL: `statement_timeout` of every pooled connection (not of
    /// migrations). SQLite: how long a writer waits for the write lock
    /// (`busy_timeout`).
    pub statement_timeout: std::time::Duration,
}

/// `database.max_connections` when unset.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// `database.statement_timeout_ms` when unset.
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 10_000;

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            statement_timeout: std::time::Duration::from_millis(DEFAULT_STATEMENT_TIMEOUT_MS),
        }
    }
}

/// [`connect_with`] the default pool settings.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    connect_with(url, &PoolSettings::default()).await
}

pub async fn connect_with(url: &str, pool: &PoolSettings) -> Result<Arc<dyn Store>> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Arc::new(SqliteStore::open(url, pool).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PgStore::open(url, pool).await?)),
        _ => Err(StoreError::Url(format!(
            "unsupported database URL scheme {:?}: use sqlite:// or postgres://",
            scheme.chars().take(20).collect::<String>()
        ))),
    }
}
