//! The gate's way out to an upstream MCP server (`api::mcp_bridge`): an
//! approved `mcp.tool` call, after its claim, or a human's gated call run
//! at once. The server and its rules are read again now: a server
//! deleted, or a tool taken off its allow list, since the request is not
//! called.

use async_trait::async_trait;
use serde_json::{Map, Value};

use gatehouse_api::app::mcp_servers;
use gatehouse_api::mcp_bridge::McpCaller;
use gatehouse_api::state::AppState;
use gatehouse_domain::mcp::{ToolAccess, ToolRules};
use gatehouse_domain::Email;

use super::connect;

/// Installed by the binary (`server::Extensions::mcp`).
pub struct GatewayCaller;

#[async_trait]
impl McpCaller for GatewayCaller {
    async fn call_tool(
        &self,
        st: &AppState,
        owner: &Email,
        server: &str,
        tool: &str,
        arguments: &Map<String, Value>,
    ) -> Result<Value, String> {
        let record = mcp_servers::find(st, owner, server)
            .await
            .map_err(|e| e.message())?
            .ok_or_else(|| format!("the owner has no MCP server {server} any more"))?;
        let plan = mcp_servers::plan_of(&record)?;
        let rules = ToolRules::new(plan.allow.clone(), plan.gated.clone())
            .map_err(|e| format!("the server's stored rules are invalid: {e}"))?;
        if rules.access(tool) == ToolAccess::Hidden {
            return Err(format!(
                "tool {tool} is no longer allowed on MCP server {server}"
            ));
        }
        let result = connect::call_tool(st, owner, &plan, tool, arguments.clone()).await?;
        serde_json::to_value(result).map_err(|e| format!("the tool's result cannot be kept: {e}"))
    }
}
