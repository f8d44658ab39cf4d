//! `[server]`: how the API listener resists slow and numerous clients
//! (SPEC §6): a request head must arrive within
//! `header_timeout_seconds` of the connection opening (or of the previous
//! response, on a kept-alive connection), and at most `max_connections`
//! connections are open at once.

use std::time::Duration;

use serde::Deserialize;

use super::{invalid, ConfigError};

pub const DEFAULT_HEADER_TIMEOUT_SECONDS: i64 = 10;
pub const DEFAULT_MAX_CONNECTIONS: i64 = 10_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    header_timeout_seconds: Option<i64>,
    max_connections: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `server.header_timeout_seconds` (default 10).
    pub header_timeout: Duration,
    /// `server.max_connections` (default 10,000).
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECONDS as u64),
            max_connections: DEFAULT_MAX_CONNECTIONS as usize,
        }
    }
}

pub(super) fn validate(raw: RawServer) -> Result<ServerConfig, ConfigError> {
    let timeout = raw
        .header_timeout_seconds
        .unwrap_or(DEFAULT_HEADER_TIMEOUT_SECONDS);
    if !(1..=300).contains(&timeout) {
        return Err(invalid(
            "server.header_timeout_seconds",
            format!("{timeout} is outside 1..=300"),
        ));
    }
    let max = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if !(1..=1_000_000).contains(&max) {
        return Err(invalid(
            "server.max_connections",
            format!("{max} is outside 1..=1000000"),
        ));
    }
    Ok(ServerConfig {
        header_timeout: Duration::from_secs(timeout as u64),
        max_connections: max as usize,
    })
}

impl ServerConfig {
    pub(super) fn render(&self) -> String {
        format!(
            "[server]\nheader_timeout_seconds = {}\nmax_connections = {}\n",
            self.header_timeout.as_secs(),
            self.max_connections
        )
    }
}
