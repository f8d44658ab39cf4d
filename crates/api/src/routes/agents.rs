//! Agents: named non-human actors registered under their owner.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use gatehouse_domain::names::validate_agent_name;
use gatehouse_domain::Principal;
use gatehouse_store::StoreError;

use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    name: String,
}

/// Human session. 201 `{"name"}`; 409 when the owner has it already.
pub async fn create(
    principal: Principal,
    State(st): State<AppState>,
    request: RequestId,
    ApiJson(body): ApiJson<NewAgent>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    principal.require_human()?;
    validate_agent_name(&body.name).map_err(|e| ApiError::BadRequest {
        code: "invalid_name",
        message: e.to_string(),
    })?;
    let event = audit_event(&principal, "agent.create", &body.name, "ok", &request);
    match st
        .store
        .create_agent(&principal.owner, &body.name, event, st.now())
        .await
    {
        Ok(()) => Ok((StatusCode::CREATED, Json(json!({ "name": body.name })))),
        Err(StoreError::Conflict(_)) => Err(ApiError::Conflict(format!(
            "agent {} already exists",
            body.name
        ))),
        Err(e) => Err(e.into()),
    }
}
