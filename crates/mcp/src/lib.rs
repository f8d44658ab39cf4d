//! Gatehouse's MCP surfaces (SPEC §13), over the API's application layer
//! (`gatehouse_api::app`): the MCP front-end only translates MCP messages
//! to and from the same functions the JSON handlers and the console call,
//! so no rule has a second implementation here.
//!
//! - `own`: Gatehouse's own tools for agents, at `/mcp` (Streamable HTTP)
//!   and over stdio (`gatehouse mcp`, a relay to `/mcp`).
//! - `gateway`: `/mcp/{name}`, an agent's session proxied to an owner's
//!   upstream MCP server, with tool calls filtered, the owner's secret
//!   injected and gated calls held for a human.

#![forbid(unsafe_code)]

pub mod gateway;
pub mod own;

use gatehouse_api::router::Route;

/// Every MCP route, for the one router builder (the binary adds them
/// beside the console's).
pub fn routes() -> Vec<Route> {
    let mut routes = own::routes();
    routes.extend(gateway::routes());
    routes
}
