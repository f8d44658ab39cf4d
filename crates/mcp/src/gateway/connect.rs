//! Opening an upstream session for an owner: the owner's secret opened
//! and rendered into the auth header (held in a zeroizing buffer, never
//! logged), rmcp's client over the one outbound client, the handshake,
//! the work, the session closed.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use gatehouse_api::gate::McpServerPlan;
use gatehouse_api::state::AppState;
use gatehouse_domain::crypto::{self, Purpose};
use gatehouse_domain::mcp::AuthTemplate;
use gatehouse_domain::Email;

use super::upstream::{AuthHeader, OutboundHttp};

/// A whole upstream exchange (handshake and one request), at most.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

pub type Upstream = RunningService<RoleClient, ()>;

/// The owner's auth header for this server, or why there is none. The
/// secret is read now, so a rotated value is used from the next message.
async fn auth_header(
    st: &AppState,
    owner: &Email,
    plan: &McpServerPlan,
) -> Result<Option<AuthHeader>, String> {
    let Some(auth) = &plan.auth else {
        return Ok(None);
    };
    let record = st
        .store
        .secret(owner, &auth.secret)
        .await
        .map_err(|_| "the owner's secrets cannot be read now".to_string())?
        .ok_or_else(|| format!("the owner's secret {} no longer exists", auth.secret))?;
    gatehouse_api::app::mcp_servers::secret_bound_to(&record, &plan.url)?;
    let key = st
        .data_key(owner)
        .await
        .map_err(|_| "the owner's key cannot be read now".to_string())?
        .ok_or("the owner no longer exists")?;
    let value = crypto::open(
        &key,
        Purpose::SecretValue,
        &[owner.as_str(), &auth.secret],
        &record.sealed,
    )
    .map_err(|_| format!("the owner's secret {} does not open", auth.secret))?;
    let text = value
        .expose_str()
        .ok_or_else(|| format!("the owner's secret {} is not text", auth.secret))?;
    let template = AuthTemplate::new(&auth.header, &auth.format)
        .map_err(|e| format!("the stored auth template is invalid: {e}"))?;
    let rendered = Zeroizing::new(template.render(text).ok_or_else(|| {
        format!(
            "the owner's secret {} cannot be sent in a header",
            auth.secret
        )
    })?);
    AuthHeader::new(template.header(), rendered)
        .map(Some)
        .ok_or_else(|| "the auth header cannot be built".to_string())
}

/// A session with the owner's upstream, initialised.
pub async fn open(st: &AppState, owner: &Email, plan: &McpServerPlan) -> Result<Upstream, String> {
    let auth = auth_header(st, owner, plan).await?;
    let client = OutboundHttp::new(Arc::clone(&st.outbound), auth);
    let transport = StreamableHttpClientTransport::with_client(
        client,
        StreamableHttpClientTransportConfig::with_uri(plan.url.clone()),
    );
    match tokio::time::timeout(UPSTREAM_TIMEOUT, ().serve(transport)).await {
        Ok(Ok(running)) => Ok(running),
        Ok(Err(e)) => Err(format!("the upstream session did not start: {e}")),
        Err(_) => Err("the upstream did not answer in time".into()),
    }
}

async fn close(mut upstream: Upstream) {
    let _ = upstream.close_with_timeout(Duration::from_secs(5)).await;
}

/// Every tool the upstream lists.
pub async fn list_tools(
    st: &AppState,
    owner: &Email,
    plan: &McpServerPlan,
) -> Result<Vec<Tool>, String> {
    let upstream = open(st, owner, plan).await?;
    let listed = tokio::time::timeout(UPSTREAM_TIMEOUT, upstream.peer().list_all_tools()).await;
    close(upstream).await;
    match listed {
        Ok(Ok(tools)) => Ok(tools),
        Ok(Err(e)) => Err(format!("the upstream did not list its tools: {e}")),
        Err(_) => Err("the upstream did not answer in time".into()),
    }
}

/// One tool call, upstream, now.
pub async fn call_tool(
    st: &AppState,
    owner: &Email,
    plan: &McpServerPlan,
    tool: &str,
    arguments: Map<String, Value>,
) -> Result<CallToolResult, String> {
    let upstream = open(st, owner, plan).await?;
    let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
    let called = tokio::time::timeout(UPSTREAM_TIMEOUT, upstream.peer().call_tool(params)).await;
    close(upstream).await;
    match called {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(e)) => Err(format!("the upstream refused the call: {e}")),
        Err(_) => Err("the upstream did not answer in time".into()),
    }
}
