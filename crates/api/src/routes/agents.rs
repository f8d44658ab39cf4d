//! Agents (`app::agents`): thin JSON handlers.

use crate::gate::GateOutcome;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use gatehouse_domain::Principal;

use crate::app::agents as app;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    #[schema(schema_with = crate::openapi::grammar::agent_name)]
    name: String,
}

/// Human session. 201 `{"name"}`; 409 when the owner has it already.
pub async fn create(
    principal: Principal,
    State(st): State<AppState>,
    request: RequestId,
    ApiJson(body): ApiJson<NewAgent>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    app::create(&st, &principal, &request, &body.name).await?;
    Ok((StatusCode::CREATED, Json(json!({ "name": body.name }))))
}

/// Scope `jobs:read`.
pub async fn list(principal: Principal, State(st): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    app::list(&st, &principal).await.map(Json)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretCeiling {
    /// Required: a missing field is not read as "none" or "all".
    #[schema(schema_with = crate::openapi::grammar::secret_names)]
    secrets: Vec<String>,
}

/// Scope `jobs:create`; gated (`policy.change`).
pub async fn set_secrets(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: RequestId,
    ApiJson(body): ApiJson<SecretCeiling>,
) -> ApiResult<GateOutcome> {
    app::set_secrets(&st, &principal, &headers, &request, name, body.secrets).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressPolicy {
    /// Required; `null` lifts the agent's policy (a missing field is not
    /// read as "lift": that would widen access by accident).
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = crate::openapi::grammar::policy_hosts, required = true)]
    allow_hosts: Option<Option<Vec<String>>>,
}

fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Vec<String>>>, D::Error> {
    Option::<Vec<String>>::deserialize(d).map(Some)
}

/// Scope `jobs:create`; gated (`policy.change`).
pub async fn set_egress(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: RequestId,
    ApiJson(body): ApiJson<EgressPolicy>,
) -> ApiResult<GateOutcome> {
    let Some(allow_hosts) = body.allow_hosts else {
        return Err(ApiError::bad_request(
            "allow_hosts is required: a list of host patterns, or null to lift the policy",
        ));
    };
    app::set_egress(&st, &principal, &headers, &request, name, allow_hosts).await
}
