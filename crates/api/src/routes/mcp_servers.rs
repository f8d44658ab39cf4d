//! Upstream MCP servers (SPEC §13): thin JSON handlers over
//! `app::mcp_servers`.

use crate::gate::GateOutcome;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::Value;

use gatehouse_domain::Principal;

use crate::app::mcp_servers::{self as app, McpServerInput};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::AppState;

/// Scope `secrets:write` (it decides where an owner's secret is sent);
/// gated as `policy.change` for non-interactive credentials.
pub async fn save(
    principal: Principal,
    State(st): State<AppState>,
    headers: HeaderMap,
    request: RequestId,
    ApiJson(body): ApiJson<McpServerInput>,
) -> ApiResult<GateOutcome> {
    app::save(&st, &principal, &headers, &request, body).await
}

/// Any non-job credential of the owner: names, URLs and rules, no values.
pub async fn list(principal: Principal, State(st): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let servers = app::list(&st, &principal).await?;
    Ok(Json(servers.iter().map(app::view).collect()))
}

pub async fn get(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(app::view(&app::get(&st, &principal, &name).await?)))
}

/// Scope `secrets:write`; not gated: it only takes access away.
pub async fn delete(
    principal: Principal,
    State(st): State<AppState>,
    request: RequestId,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    app::delete(&st, &principal, &request, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
