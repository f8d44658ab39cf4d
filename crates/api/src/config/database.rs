//! `[database]`: how the store uses its database. `max_connections` is the
//! pool size per process (PostgreSQL: each replica opens at most this many,
//! plus two `LISTEN` connections; SQLite: readers and the one writer);
//! `statement_timeout_ms` is PostgreSQL's `statement_timeout` on every
//! pooled connection (a statement stuck behind a lock fails instead of
//! holding a connection) and SQLite's `busy_timeout` (how long a writer
//! waits for the write lock). Defaults and their reasons: README,
//! "Scale-out".

use std::time::Duration;

use gatehouse_store::{PoolSettings, DEFAULT_MAX_CONNECTIONS, DEFAULT_STATEMENT_TIMEOUT_MS};
use serde::Deserialize;

use super::{invalid, ConfigError};

/// Upper bound of `database.max_connections`: PostgreSQL's own default
/// `max_connections` is 100 for the whole server.
const MAX_POOL: i64 = 1000;
/// Bounds of `database.statement_timeout_ms`: 100 ms .. 10 min.
const TIMEOUT_MS: std::ops::RangeInclusive<i64> = 100..=600_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    max_connections: Option<i64>,
    statement_timeout_ms: Option<i64>,
}

pub(super) fn validate(raw: RawDatabase) -> Result<PoolSettings, ConfigError> {
    let max = raw
        .max_connections
        .unwrap_or(i64::from(DEFAULT_MAX_CONNECTIONS));
    if !(1..=MAX_POOL).contains(&max) {
        return Err(invalid(
            "database.max_connections",
            format!("{max} is outside 1..={MAX_POOL}"),
        ));
    }
    let timeout = raw
        .statement_timeout_ms
        .unwrap_or(DEFAULT_STATEMENT_TIMEOUT_MS as i64);
    if !TIMEOUT_MS.contains(&timeout) {
        return Err(invalid(
            "database.statement_timeout_ms",
            format!(
                "{timeout} is outside {}..={}",
                TIMEOUT_MS.start(),
                TIMEOUT_MS.end()
            ),
        ));
    }
    Ok(PoolSettings {
        max_connections: max as u32,
        statement_timeout: Duration::from_millis(timeout as u64),
    })
}

pub(super) fn render(pool: &PoolSettings) -> String {
    format!(
        "[database]\nmax_connections = {}\nstatement_timeout_ms = {}\n",
        pool.max_connections,
        pool.statement_timeout.as_millis()
    )
}
