//! The MCP gateway (SPEC §13, second bullet): `/mcp/{name}` proxies an
//! agent's MCP session to one of its owner's upstream MCP servers.
//!
//! - **Who**: every HTTP message of the session passes the `Principal`
//!   extractor (the one verifier, revocation included, and the route's
//!   rule) before it reaches MCP; a revoked token's next message is
//!   refused, and a call waiting for a human ends when its credential
//!   stops holding. The server is looked up among the caller's owner's
//!   servers only: another owner's name is `404`, like an unknown one.
//! - **Which tools** (`domain::mcp::ToolRules`): `tools/list` shows only
//!   the tools `allow` matches; a call to any other is refused naming it,
//!   and nothing reaches the upstream.
//! - **Gated tools**: a call to a tool `gated` matches sends nothing
//!   upstream; it goes through the one gate as `mcp.tool` (`hold.rs`), and
//!   an approved call runs once, after its claim, through [`caller`].
//! - **Upstream**: the owner's secret goes into the configured header and
//!   every request goes through the one outbound client (`upstream.rs`).
//! - **Audit**: every tool call, with server, tool, outcome and the
//!   arguments' digest, never their values.
//!
//! The agent side is served statelessly (each POST stands alone, so each
//! is authenticated on its own and no session outlives its credential);
//! each forwarded message opens a short upstream session for the owner.

mod caller;
mod connect;
mod handler;
mod hold;
pub mod upstream;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use gatehouse_api::app::mcp_servers;
use gatehouse_api::error::ApiError;
use gatehouse_api::request_id::RequestId;
use gatehouse_api::router::{at, needs, Route};
use gatehouse_api::state::AppState;
use gatehouse_domain::access::ANY;
use gatehouse_domain::names::validate_mcp_server_name;
use gatehouse_domain::Principal;

pub use caller::GatewayCaller;
pub use handler::CallContext;

/// The path agents connect to.
pub const PATH: &str = "/mcp/{name}";

type Service = StreamableHttpService<handler::GatewayHandler, LocalSessionManager>;

fn service() -> Arc<Service> {
    let config = StreamableHttpServerConfig::default()
        // Every message stands alone: authenticated by itself, no session
        // to outlive a revoked credential.
        .with_legacy_session_mode(false)
        // The Host and Origin checks protect unauthenticated local
        // servers; every request here carries a credential checked by the
        // one verifier (and a cookie session the same-origin rule).
        .disable_allowed_hosts()
        .with_sse_keep_alive(Some(std::time::Duration::from_secs(15)));
    Arc::new(StreamableHttpService::new(
        || Ok(handler::GatewayHandler),
        Arc::new(LocalSessionManager::default()),
        config,
    ))
}

/// The gateway's routes, declared with the API's `at` so they pass the
/// same rule enforcement: any credential class may connect (its own
/// token; what it may do is the owner's rules and the gate's).
pub fn routes() -> Vec<Route> {
    let svc = service();
    let rule = needs(None, ANY);
    [Method::POST, Method::GET, Method::DELETE]
        .into_iter()
        .map(|method| {
            let svc = svc.clone();
            at(
                method,
                PATH,
                rule,
                move |principal: Principal,
                      State(st): State<AppState>,
                      Path(name): Path<String>,
                      request: RequestId,
                      req: Request| {
                    let svc = svc.clone();
                    async move { serve(svc, st, principal, name, request, req).await }
                },
            )
        })
        .collect()
}

async fn serve(
    svc: Arc<Service>,
    st: AppState,
    principal: Principal,
    name: String,
    request: RequestId,
    req: Request,
) -> Response {
    // An invalid name, an unknown one and another owner's answer alike.
    let unknown = || ApiError::NotFound("no such MCP server".into()).into_response();
    if validate_mcp_server_name(&name).is_err() {
        return unknown();
    }
    let record = match mcp_servers::find(&st, &principal.owner, &name).await {
        Ok(Some(r)) => r,
        Ok(None) => return unknown(),
        Err(e) => return e.into_response(),
    };
    let plan = match mcp_servers::plan_of(&record) {
        Ok(p) => p,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let (mut parts, body) = req.into_parts();
    let context = CallContext::new(st, principal, plan, request, &parts);
    parts.extensions.insert(context);
    let answer = svc.handle(Request::from_parts(parts, body)).await;
    answer.map(Body::new).into_response()
}
