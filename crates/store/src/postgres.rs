//! The PostgreSQL engine, for several replicas sharing one database.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

use crate::migrations::{migrator, Dialect};

pub struct PgStore {
    pub(crate) pool: PgPool,
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
        Ok(Self { pool })
    }
}

crate::sql_store::sql_store!(PgStore, sqlx::Postgres, Engine::Postgres, "BEGIN");
