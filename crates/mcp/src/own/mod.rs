//! Gatehouse's own MCP server (SPEC §13, first bullet): `/mcp` on the API
//! listener, Streamable HTTP (rmcp), declared in the route table's style
//! (`router::at`, rule: any credential class) and mounted by the one
//! router builder, so it sits behind the same middleware as every route.
//!
//! Every request (each `POST` message, the `GET` stream, the closing
//! `DELETE`) is authenticated by the `Principal` extractor, the one
//! verifier, before rmcp sees it; the verified caller travels with the
//! message to the tool (`Caller`, in the request's extensions), so a
//! tool acts for the credential of the message that called it, never for
//! one remembered from earlier. Sessions are bound to the credential that
//! opened them and end when it stops being valid (`sessions`).
//!
//! `gatehouse mcp` (stdio) relays to this endpoint, so the tools and
//! their rules exist once, here.

pub mod args;
pub mod sessions;
pub mod tools;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use gatehouse_api::auth::peer_ip;
use gatehouse_api::error::ApiError;
use gatehouse_api::request_id::RequestId;
use gatehouse_api::router::{at, needs, Route};
use gatehouse_api::state::AppState;
use gatehouse_domain::access::ANY;
use gatehouse_domain::Principal;

use sessions::{Sessions, Use};

/// Where the server listens, on the API listener.
pub const PATH: &str = "/mcp";

/// The session header of Streamable HTTP.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// The verified caller of one message, handed to the tools.
#[derive(Clone)]
pub struct Caller {
    pub st: AppState,
    pub principal: Principal,
    pub request: RequestId,
}

/// The `/mcp` routes: `POST` (messages), `GET` (the server's stream),
/// `DELETE` (end the session), each open to any credential class that
/// passes the one verifier.
pub fn routes() -> Vec<Route> {
    let own = Arc::new(Own::new());
    [Method::POST, Method::GET, Method::DELETE]
        .into_iter()
        .map(|method| {
            let own = own.clone();
            at(
                method,
                PATH,
                needs(None, ANY),
                move |principal: Result<Principal, ApiError>,
                      State(st): State<AppState>,
                      request: RequestId,
                      req: Request| async move {
                    own.serve(principal, st, request, req).await
                },
            )
        })
        .collect()
}

/// One server's MCP endpoint: rmcp's service and the sessions' owners.
pub struct Own {
    service: StreamableHttpService<OwnTools, LocalSessionManager>,
    sessions: Arc<Sessions>,
}

impl Default for Own {
    fn default() -> Self {
        Self::new()
    }
}

impl Own {
    pub fn new() -> Self {
        let manager = Arc::new(LocalSessionManager::default());
        // Host validation guards unauthenticated local servers against DNS
        // rebinding; here every request carries a credential the verifier
        // checks (a cookie one also passes the same-origin rule), and the
        // API answers on whatever names its operator gives it.
        let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
        Self {
            service: StreamableHttpService::new(|| Ok(OwnTools), manager.clone(), config),
            sessions: Arc::new(Sessions::new(manager)),
        }
    }

    /// How many sessions are open.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    async fn serve(
        &self,
        principal: Result<Principal, ApiError>,
        st: AppState,
        request: RequestId,
        req: Request,
    ) -> Response {
        self.sessions.watch(&st);
        let session = req
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let principal = match principal {
            Ok(p) => p,
            Err(refused) => {
                if let Some(id) = &session {
                    self.sessions.recheck(&st, id).await;
                }
                return refused.into_response();
            }
        };
        if let Some(id) = &session {
            if self.sessions.check(id, &principal) == Use::Unknown {
                // Unknown, ended, or another credential's: the same 404,
                // which tells a client to start a new session.
                return ApiError::NotFound("no such MCP session".into()).into_response();
            }
        }
        let (mut parts, body) = req.into_parts();
        let presented = st.auth.presentation(&parts.headers, peer_ip(&parts));
        let method = parts.method.clone();
        parts.extensions.insert(Caller {
            st,
            principal: principal.clone(),
            request,
        });
        let resp = self.service.handle(Request::from_parts(parts, body)).await;
        match (&session, method) {
            (None, _) => {
                if let Some(id) = resp
                    .headers()
                    .get(SESSION_HEADER)
                    .and_then(|v| v.to_str().ok())
                {
                    self.sessions.bind(id, &principal, presented);
                }
            }
            (Some(id), Method::DELETE) if resp.status().is_success() => self.sessions.forget(id),
            _ => {}
        }
        resp.map(axum::body::Body::new)
    }
}

/// The tools' MCP face. It holds nothing: each message brings its caller.
#[derive(Clone, Copy)]
pub struct OwnTools;

fn caller(ctx: &RequestContext<RoleServer>) -> Result<(&Parts, &Caller), ErrorData> {
    let parts = ctx
        .extensions
        .get::<Parts>()
        .ok_or_else(|| ErrorData::internal_error("no HTTP request behind this message", None))?;
    let caller = parts
        .extensions
        .get::<Caller>()
        .ok_or_else(|| ErrorData::internal_error("no verified caller", None))?;
    Ok((parts, caller))
}

impl ServerHandler for OwnTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("gatehouse", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Gatehouse: who you are (whoami), what you may use (list_grants), whether \
                 the egress proxy lets you reach a URL (egress_check), dangerous verbs that \
                 wait for a human (secret_write, token_mint_api, ...: they answer an \
                 approval id; poll approval_status), and revoke_self.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let (_, caller) = caller(&ctx)?;
        Ok(ListToolsResult::with_all_items(tools::listed(
            &caller.principal,
        )))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (parts, caller) = caller(&ctx)?;
        let Some(name) = tools::find(&caller.principal, &request.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool {:?}",
                    request.name.chars().take(64).collect::<String>()
                ),
                None,
            ));
        };
        let call = tools::Call {
            st: &caller.st,
            principal: &caller.principal,
            headers: &parts.headers,
            request: &caller.request,
        };
        Ok(tools::call(&call, name, request.arguments).await.into())
    }
}
