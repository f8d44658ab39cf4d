//! Agents: named non-human actors registered under their owner.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use gatehouse_domain::names::{normalise_host_pattern, validate_agent_name, validate_secret_name};
use gatehouse_domain::Principal;
use gatehouse_store::StoreError;

use crate::error::{ApiError, ApiResult};
use crate::gate::{gate, GatedCall};
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

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

/// Scope `jobs:read`: the owner's agents with their egress policies
/// and secret ceilings (`[]` until a human sets one).
pub async fn list(principal: Principal, State(st): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let agents = st.store.agents(&principal.owner).await?;
    Ok(Json(
        agents
            .iter()
            .map(|a| {
                let hosts: Value = a
                    .allow_hosts
                    .as_deref()
                    .and_then(|h| serde_json::from_str(h).ok())
                    .unwrap_or(Value::Null);
                let secrets: Value = a
                    .secrets
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_else(|| json!([]));
                json!({ "name": a.name, "allow_hosts": hosts, "secrets": secrets })
            })
            .collect(),
    ))
}

/// At most this many secrets in an agent's ceiling.
pub const MAX_CEILING: usize = 128;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretCeiling {
    /// Required: a missing field is not read as "none" or "all".
    #[schema(schema_with = crate::openapi::grammar::secret_names)]
    secrets: Vec<String>,
}

/// Scope `jobs:create`. The agent's secret ceiling: the secrets jobs
/// created by the agent's own credentials (or api tokens) may be granted
/// (SPEC §4). Names need not exist yet. A gated verb (`policy.change`):
/// a human session sets it at once, anything else waits for a human.
pub async fn set_secrets(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: RequestId,
    ApiJson(body): ApiJson<SecretCeiling>,
) -> ApiResult<Response> {
    validate_agent_name(&name).map_err(|e| ApiError::BadRequest {
        code: "invalid_name",
        message: e.to_string(),
    })?;
    if body.secrets.len() > MAX_CEILING {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_CEILING} secrets"
        )));
    }
    for secret in &body.secrets {
        validate_secret_name(secret).map_err(|e| ApiError::BadRequest {
            code: "invalid_name",
            message: format!("secrets entry: {e}"),
        })?;
    }
    let mut secrets = body.secrets;
    secrets.sort();
    secrets.dedup();
    if !st.store.agent_exists(&principal.owner, &name).await? {
        return Err(ApiError::NotFound(format!("no agent named {name}")));
    }
    let call = GatedCall::AgentSecrets {
        agent: name,
        secrets,
    };
    gate(&st, &principal, &headers, &request, call).await
}

/// At most this many patterns in an agent's policy.
pub const MAX_POLICY_HOSTS: usize = 64;

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

/// Scope `jobs:create`. The agent's egress policy: every job of the agent
/// may reach only these hosts (exact names, `*.suffix`, or `"*"`), on top
/// of the job's own allow list. A gated verb (`policy.change`): a human
/// session sets it at once, anything else waits for a human.
pub async fn set_egress(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: RequestId,
    ApiJson(body): ApiJson<EgressPolicy>,
) -> ApiResult<Response> {
    validate_agent_name(&name).map_err(|e| ApiError::BadRequest {
        code: "invalid_name",
        message: e.to_string(),
    })?;
    let Some(allow_hosts) = body.allow_hosts else {
        return Err(ApiError::bad_request(
            "allow_hosts is required: a list of host patterns, or null to lift the policy",
        ));
    };
    let allow_hosts = match allow_hosts {
        None => None,
        Some(hosts) => {
            if hosts.len() > MAX_POLICY_HOSTS {
                return Err(ApiError::bad_request(format!(
                    "at most {MAX_POLICY_HOSTS} allow_hosts"
                )));
            }
            Some(
                hosts
                    .iter()
                    .map(|h| policy_pattern(h))
                    .collect::<ApiResult<Vec<_>>>()?,
            )
        }
    };
    if !st
        .store
        .agents(&principal.owner)
        .await?
        .iter()
        .any(|a| a.name == name)
    {
        return Err(ApiError::NotFound(format!("no agent named {name}")));
    }
    let call = GatedCall::PolicyChange {
        agent: name,
        allow_hosts,
    };
    gate(&st, &principal, &headers, &request, call).await
}

fn policy_pattern(pattern: &str) -> ApiResult<String> {
    if pattern == "*" {
        return Ok(pattern.into());
    }
    normalise_host_pattern(pattern).ok_or_else(|| {
        ApiError::bad_request(format!(
            "allow_hosts entry {:?} is not a host name, *.suffix or *",
            pattern.chars().take(80).collect::<String>()
        ))
    })
}
