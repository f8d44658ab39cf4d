//! A real Gatehouse (API, gateway routes, the gateway's caller) on
//! ephemeral ports with a manual clock, on SQLite or PostgreSQL; and a
//! real upstream MCP server (rmcp, over TLS under a test CA the server
//! trusts through `egress.extra_root_certs`, reached as `mcp.test`
//! through `egress.static_hosts` and `egress.allow_private_cidrs`) that
//! records every tool call and every auth header it receives.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use gatehouse_api::config::Config;
use gatehouse_api::server::{start_full, Extensions, Running};
use gatehouse_domain::clock::{Clock, ManualClock, SystemClock};
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::master_key::encode_master_key;
use gatehouse_egress::test_support::{tls_server_config, upstream_ca, UpstreamCa};
use gatehouse_store::test_support::fresh_postgres_url;

pub const OP: &str = "op@example.com";
pub const ALICE: &str = "alice@example.com";
pub const BOB: &str = "bob@example.com";
/// The upstream's name, mapped to loopback by `egress.static_hosts`.
pub const UPSTREAM_HOST: &str = "mcp.test";
pub const SECRET_VALUE: &str = "ghp_upstream-secret-value";

#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// What the upstream saw.
#[derive(Default)]
pub struct Seen {
    /// (tool, arguments), in order.
    pub calls: Mutex<Vec<(String, Value)>>,
    /// Every `Authorization` header value received.
    pub auth: Mutex<Vec<String>>,
    /// Every request's header names and values, flattened.
    pub headers: Mutex<Vec<String>>,
}

impl Seen {
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap().clone()
    }
    pub fn auth(&self) -> Vec<String> {
        self.auth.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Recorder {
    seen: Arc<Seen>,
}

fn tool(name: &'static str) -> Tool {
    let schema = json!({"type": "object", "properties": {"repo": {"type": "string"}}});
    Tool::new(
        name,
        format!("the {name} tool"),
        Arc::new(schema.as_object().unwrap().clone()),
    )
}

/// The tools the upstream lists.
pub const TOOLS: [&str; 4] = ["search", "read_file", "delete_repo", "admin_reset"];

impl ServerHandler for Recorder {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            TOOLS.iter().map(|t| tool(t)).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        self.seen
            .calls
            .lock()
            .unwrap()
            .push((request.name.to_string(), args.clone()));
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "{} ran with {args}",
            request.name
        ))])
        .into())
    }
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    pub ca: UpstreamCa,
}

impl Upstream {
    pub fn url(&self) -> String {
        format!("https://{UPSTREAM_HOST}:{}/mcp", self.addr.port())
    }
}

/// The recording upstream MCP server, over TLS for `mcp.test`.
pub async fn upstream() -> Upstream {
    let ca = upstream_ca();
    let seen = Arc::new(Seen::default());
    let recorder = Recorder { seen: seen.clone() };
    let service: StreamableHttpService<Recorder, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(recorder.clone()),
        Default::default(),
        StreamableHttpServerConfig::default().disable_allowed_hosts(),
    );
    let headers_seen = seen.clone();
    let router =
        axum::Router::new()
            .nest_service("/mcp", service)
            .layer(axum::middleware::from_fn(
                move |req: Request, next: Next| {
                    let seen = headers_seen.clone();
                    async move {
                        for (name, value) in req.headers() {
                            let v = value.to_str().unwrap_or_default().to_string();
                            if name == "authorization" {
                                seen.auth.lock().unwrap().push(v.clone());
                            }
                            seen.headers.lock().unwrap().push(format!("{name}: {v}"));
                        }
                        Ok::<Response, std::convert::Infallible>(next.run(req).await)
                    }
                },
            ));
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_server_config(&ca, &[UPSTREAM_HOST]));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
                    .await;
            });
        }
    });
    Upstream { addr, seen, ca }
}

pub struct TestServer {
    pub url: String,
    pub code: Option<String>,
    pub running: Option<Running>,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
    pub upstream: Upstream,
    pub env: BTreeMap<String, String>,
}

/// A server configured to reach `upstream` (and nothing else private),
/// with `extra` environment on top.
pub async fn server(engine: Engine, extra: &[(&str, &str)]) -> TestServer {
    let upstream = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let database_url = match engine {
        Engine::Sqlite => gatehouse_store::test_support::sqlite_url(dir.path()),
        Engine::Postgres => fresh_postgres_url().await,
    };
    let key = encode_master_key(&SymmetricKey::generate())
        .trim()
        .to_string();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in [
        ("GATEHOUSE_LISTEN", "127.0.0.1:0".to_string()),
        ("GATEHOUSE_EGRESS_LISTEN", "127.0.0.1:0".to_string()),
        ("GATEHOUSE_DATA_DIR", dir.path().display().to_string()),
        ("GATEHOUSE_DATABASE_URL", database_url),
        ("GATEHOUSE_MASTER_KEY", key),
        (
            "GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS",
            "127.0.0.0/8".to_string(),
        ),
        (
            "GATEHOUSE_EGRESS_STATIC_HOSTS",
            format!("{UPSTREAM_HOST}=127.0.0.1"),
        ),
        (
            "GATEHOUSE_EGRESS_EXTRA_ROOT_CERTS",
            upstream.ca.pem_file.display().to_string(),
        ),
        (
            "GATEHOUSE_EGRESS_ALLOWED_PORTS",
            format!("80,443,{}", upstream.addr.port()),
        ),
    ] {
        env.insert(k.into(), v);
    }
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    boot(
        env,
        upstream,
        Arc::new(dir),
        ManualClock::new(SystemClock.now()),
    )
    .await
}

async fn boot(
    env: BTreeMap<String, String>,
    upstream: Upstream,
    dir: Arc<tempfile::TempDir>,
    clock: ManualClock,
) -> TestServer {
    let config = Config::load(None, &env).unwrap();
    let running = start_full(
        config,
        Arc::new(clock.clone()),
        std::future::pending(),
        Extensions {
            routes: gatehouse_mcp::gateway::routes(),
            mcp: Some(Arc::new(gatehouse_mcp::gateway::GatewayCaller)),
        },
    )
    .await
    .unwrap();
    TestServer {
        url: format!("http://{}", running.addr),
        code: running.bootstrap_code.clone(),
        running: Some(running),
        clock,
        client: reqwest::Client::new(),
        dir,
        upstream,
        env,
    }
}

impl TestServer {
    /// Stops this server and starts it again on the same store and keys,
    /// with `overrides` in its environment.
    pub async fn restart_with(mut self, overrides: &[(&str, &str)]) -> TestServer {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.insert(k.to_string(), v.to_string());
        }
        boot(env, self.upstream, self.dir, self.clock).await
    }

    pub fn state(&self) -> &gatehouse_api::state::AppState {
        &self.running.as_ref().unwrap().state
    }

    pub async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{}", self.url, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn claim(&self, email: &str) -> String {
        let code = self.code.clone().unwrap();
        let (status, body) = self
            .json(
                reqwest::Method::POST,
                "/v1/bootstrap/claim",
                None,
                Some(json!({"code": code, "email": email})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// Adds an owner as the operator and logs them in: their session.
    pub async fn owner(&self, operator: &str, email: &str) -> String {
        let (status, body) = self
            .json(
                reqwest::Method::POST,
                "/v1/owners",
                Some(operator),
                Some(json!({"email": email})),
            )
            .await;
        assert!(status == 201 || status == 200, "{body}");
        let code = body["login_code"].as_str().unwrap();
        let (status, body) = self
            .json(
                reqwest::Method::POST,
                "/v1/login",
                None,
                Some(json!({"email": email, "code": code})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    pub async fn secret(&self, session: &str, name: &str, value: &str) {
        let (status, body) = self
            .json(
                reqwest::Method::PUT,
                &format!("/v1/secrets/{name}"),
                Some(session),
                Some(json!({"value": value, "allowed_hosts": [UPSTREAM_HOST]})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// An agent and a token for it, minted by a human session.
    pub async fn agent_token(&self, session: &str, name: &str) -> String {
        let (status, body) = self
            .json(
                reqwest::Method::POST,
                "/v1/agents",
                Some(session),
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = self
            .json(
                reqwest::Method::POST,
                "/v1/tokens",
                Some(session),
                Some(json!({ "class": "agent", "subject": name, "scope": "jobs:read" })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// Saves an MCP server as a human session: (status, body).
    pub async fn save_server(&self, session: &str, body: Value) -> (u16, Value) {
        self.json(
            reqwest::Method::POST,
            "/v1/mcp/servers",
            Some(session),
            Some(body),
        )
        .await
    }

    /// The standard server: every tool allowed, `delete_*` and
    /// `admin_*` gated... unless the test says otherwise.
    pub fn server_body(&self, name: &str, allow: &[&str], gated: &[&str]) -> Value {
        json!({
            "name": name,
            "url": self.upstream.url(),
            "auth": {"secret": "GH", "header": "Authorization", "format": "Bearer {value}"},
            "tools": {"allow": allow, "gated": gated},
        })
    }

    /// An MCP client (rmcp's own) on `/mcp/{name}` with `token`.
    pub async fn connect(&self, name: &str, token: &str) -> RunningService<RoleClient, ()> {
        self.try_connect(name, token).await.unwrap()
    }

    pub async fn try_connect(
        &self,
        name: &str,
        token: &str,
    ) -> Result<RunningService<RoleClient, ()>, String> {
        let transport = StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp/{name}", self.url))
                .auth_header(token.to_string()),
        );
        ().serve(transport).await.map_err(|e| e.to_string())
    }

    pub async fn audit(&self) -> Vec<gatehouse_domain::audit::AuditRecord> {
        self.state().store.audit_all().await.unwrap().0
    }
}

/// The text of a tool result's content blocks.
pub fn text_of(result: &CallToolResult) -> String {
    serde_json::to_value(&result.content).unwrap().to_string()
}

pub fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// Runs each named async test function on both engines.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::support::Engine::Sqlite).await })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::support::Engine::Postgres).await })*
        }
    };
}
