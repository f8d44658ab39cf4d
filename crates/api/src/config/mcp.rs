//! `[mcp]`: the MCP gateway (SPEC §13). `hold_seconds`: how long a call
//! to a gated tool keeps the agent waiting for a human's decision
//! (progress notifications keep its client patient) before it answers
//! `pending` with the approval id.

use std::time::Duration;

use serde::Deserialize;

use super::{invalid, ConfigError};

pub const DEFAULT_HOLD_SECONDS: i64 = 60;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMcp {
    hold_seconds: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct McpConfig {
    /// `mcp.hold_seconds` (default 60; 0 answers `pending` at once).
    pub hold: Duration,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self {
            hold: Duration::from_secs(DEFAULT_HOLD_SECONDS as u64),
        }
    }
}

pub(super) fn validate(raw: RawMcp) -> Result<McpConfig, ConfigError> {
    let hold = raw.hold_seconds.unwrap_or(DEFAULT_HOLD_SECONDS);
    if !(0..=3600).contains(&hold) {
        return Err(invalid(
            "mcp.hold_seconds",
            format!("{hold} is outside 0..=3600"),
        ));
    }
    Ok(McpConfig {
        hold: Duration::from_secs(hold as u64),
    })
}

impl McpConfig {
    pub(super) fn render(&self) -> String {
        format!("\n[mcp]\nhold_seconds = {}\n", self.hold.as_secs())
    }
}
