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

pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
    match scheme {
        "sqlite" => Ok(Arc::new(SqliteStore::open(url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(PgStore::open(url).await?)),
        _ => Err(StoreError::Url(format!(
            "unsupported database URL scheme {:?}: use sqlite:// or postgres://",
            scheme.chars().take(20).collect::<String>()
        ))),
    }
}
