//! The seam between the one gate and the MCP gateway (SPEC §13).
//!
//! An approved `mcp.tool` call runs through the gate like every other
//! verb (claim `executing`, call out, record `executed` or `failed`), but
//! calling an upstream MCP server is the gateway's business, and the API
//! cannot depend on the crate that speaks MCP (`crates/mcp` depends on
//! the API). So the gate calls out through [`McpCaller`], which the MCP
//! crate implements and the binary installs at start
//! ([`crate::server::start_full`]), as the egress proxy reaches the API
//! through its `JobDirectory`.

use async_trait::async_trait;
use serde_json::{Map, Value};

use gatehouse_domain::Email;

use crate::state::AppState;

/// Calls one tool of an owner's upstream MCP server, now: every check
/// that depends on the caller (allow list, gate) was made before. The
/// implementation looks the server up in `owner`'s servers only, injects
/// the owner's secret and reaches the upstream through the one outbound
/// client.
#[async_trait]
pub trait McpCaller: Send + Sync + 'static {
    /// The tool's result as MCP's `CallToolResult` JSON (an upstream tool
    /// error is a result with `isError`), or why the call could not be
    /// made (no such server any more, refused address, upstream failure);
    /// the reason never carries the owner's secret.
    async fn call_tool(
        &self,
        st: &AppState,
        owner: &Email,
        server: &str,
        tool: &str,
        arguments: &Map<String, Value>,
    ) -> Result<Value, String>;
}
