//! The agent's side of the gateway: an rmcp server handler that lists
//! the allowed tools of the upstream and forwards, refuses or holds each
//! call. It holds nothing itself; each HTTP message brings its
//! [`CallContext`] (the authenticated caller, the owner's server), put
//! into the request by the route before rmcp sees it.

use std::net::IpAddr;

use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value};

use gatehouse_api::gate::McpServerPlan;
use gatehouse_api::request_id::RequestId;
use gatehouse_api::state::{audit_event, AppState};
use gatehouse_domain::mcp::{arguments_digest, ToolAccess, ToolRules};
use gatehouse_domain::Principal;

use super::connect;

/// Everything one message of an agent's session is about.
#[derive(Clone)]
pub struct CallContext {
    pub st: AppState,
    pub principal: Principal,
    pub plan: McpServerPlan,
    pub request: RequestId,
    /// The request as it came, to authenticate the caller again while a
    /// call waits for a human.
    pub method: Method,
    pub headers: HeaderMap,
    pub peer: Option<IpAddr>,
}

impl CallContext {
    pub fn new(
        st: AppState,
        principal: Principal,
        plan: McpServerPlan,
        request: RequestId,
        parts: &Parts,
    ) -> Self {
        Self {
            st,
            principal,
            plan,
            request,
            method: parts.method.clone(),
            headers: parts.headers.clone(),
            peer: gatehouse_api::auth::peer_ip(parts),
        }
    }

    pub fn rules(&self) -> ToolRules {
        // Validated when saved; a row that no longer validates allows
        // nothing.
        ToolRules::new(self.plan.allow.clone(), self.plan.gated.clone()).unwrap_or_default()
    }

    /// The caller again, through the one verifier: false once its
    /// credential no longer holds (revoked, expired, owner gone).
    pub async fn still_valid(&self) -> bool {
        self.st
            .auth
            .authenticate(&self.method, &self.headers, self.peer)
            .await
            .is_ok_and(|p| p.owner == self.principal.owner && p.subject == self.principal.subject)
    }

    /// One audit record of a tool call: server, tool and the arguments'
    /// digest in the target, the outcome; never an argument's value.
    pub async fn audit(&self, tool: &str, arguments: &Map<String, Value>, outcome: &str) {
        let digest = arguments_digest(&Value::Object(arguments.clone()));
        let event = audit_event(
            &self.principal,
            "mcp.tool",
            &format!("{} {tool} args={digest}", self.plan.name),
            outcome,
            &self.request,
        );
        if let Err(e) = self.st.store.append_audit(event, self.st.now()).await {
            tracing::warn!("auditing an MCP tool call failed: {e}");
        }
    }
}

fn context_of(ctx: &RequestContext<RoleServer>) -> Result<CallContext, ErrorData> {
    ctx.extensions
        .get::<Parts>()
        .and_then(|p| p.extensions.get::<CallContext>())
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("the gateway lost its request context", None))
}

/// A tool error the agent's model reads: what went wrong, in words.
pub fn tool_error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

#[derive(Clone)]
pub struct GatewayHandler;

impl ServerHandler for GatewayHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_instructions(
            "Gatehouse MCP gateway: the owner's allowed tools of one upstream server. \
                 Calls to gated tools wait for a human's approval and may answer pending \
                 with an approval id.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let call = context_of(&ctx)?;
        let rules = call.rules();
        let tools = connect::list_tools(&call.st, &call.principal.owner, &call.plan)
            .await
            .map_err(|e| ErrorData::internal_error(e, None))?;
        let tools = tools
            .into_iter()
            .filter(|t| rules.access(&t.name) != ToolAccess::Hidden)
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = context_of(&ctx)?;
        let tool = request.name.to_string();
        let arguments = request.arguments.clone().unwrap_or_default();
        match call.rules().access(&tool) {
            ToolAccess::Hidden => {
                call.audit(&tool, &arguments, "denied:not_allowed").await;
                Err(ErrorData::invalid_params(
                    format!(
                        "tool {tool} is not allowed on MCP server {}: the owner's allow list does not name it",
                        call.plan.name
                    ),
                    None,
                ))
            }
            ToolAccess::Gated => Ok(super::hold::gated_call(&call, &ctx, tool, arguments)
                .await
                .into()),
            ToolAccess::Allowed => Ok(forward(&call, tool, arguments).await.into()),
        }
    }
}

/// An allowed call, forwarded now.
async fn forward(
    call: &CallContext,
    tool: String,
    arguments: Map<String, Value>,
) -> CallToolResult {
    let answer = connect::call_tool(
        &call.st,
        &call.principal.owner,
        &call.plan,
        &tool,
        arguments.clone(),
    )
    .await;
    match answer {
        Ok(result) => {
            let outcome = if result.is_error == Some(true) {
                "forwarded tool_error"
            } else {
                "forwarded"
            };
            call.audit(&tool, &arguments, outcome).await;
            result
        }
        Err(reason) => {
            call.audit(&tool, &arguments, "error:upstream").await;
            tool_error(format!(
                "calling tool {tool} on MCP server {} failed: {reason}",
                call.plan.name
            ))
        }
    }
}
