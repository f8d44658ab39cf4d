//! Agents (SPEC §1, §4, §6): named non-human actors under their owner,
//! with their egress policy and secret ceiling. Changing either is the
//! gated verb `policy.change`: a human session sets it at once, anything
//! else waits for a human.

use axum::http::HeaderMap;
use serde_json::{json, Value};

use gatehouse_domain::names::{normalise_host_pattern, validate_agent_name, validate_secret_name};
use gatehouse_domain::Principal;
use gatehouse_store::StoreError;

use crate::error::{ApiError, ApiResult};
use crate::gate::{gate, GateOutcome, GatedCall};
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

/// At most this many secrets in an agent's ceiling.
pub const MAX_CEILING: usize = 128;
/// At most this many patterns in an agent's policy.
pub const MAX_POLICY_HOSTS: usize = 64;

fn checked_agent(name: &str) -> ApiResult<()> {
    validate_agent_name(name).map_err(|e| ApiError::BadRequest {
        code: "invalid_name",
        message: e.to_string(),
    })
}

/// Human session. Registers an agent; 409 when the owner has it already.
pub async fn create(
    st: &AppState,
    principal: &Principal,
    request: &RequestId,
    name: &str,
) -> ApiResult<()> {
    checked_agent(name)?;
    let event = audit_event(principal, "agent.create", name, "ok", request);
    match st
        .store
        .create_agent(&principal.owner, name, event, st.now())
        .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(_)) => {
            Err(ApiError::Conflict(format!("agent {name} already exists")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Scope `jobs:read`: the owner's agents with their egress policies
/// (`allow_hosts`, `null` when none) and secret ceilings (`secrets`,
/// `[]` until a human sets one), as `GET /v1/agents` shows them.
pub async fn list(st: &AppState, principal: &Principal) -> ApiResult<Vec<Value>> {
    let agents = st.store.agents(&principal.owner).await?;
    Ok(agents
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
        .collect())
}

/// Scope `jobs:create`. The agent's secret ceiling: the secrets jobs
/// created by the agent's own credentials (or api tokens) may be granted
/// (SPEC §4). Names need not exist yet. Gated (`policy.change`).
pub async fn set_secrets(
    st: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    request: &RequestId,
    name: String,
    secrets: Vec<String>,
) -> ApiResult<GateOutcome> {
    checked_agent(&name)?;
    if secrets.len() > MAX_CEILING {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_CEILING} secrets"
        )));
    }
    for secret in &secrets {
        validate_secret_name(secret).map_err(|e| ApiError::BadRequest {
            code: "invalid_name",
            message: format!("secrets entry: {e}"),
        })?;
    }
    let mut secrets = secrets;
    secrets.sort();
    secrets.dedup();
    if !st.store.agent_exists(&principal.owner, &name).await? {
        return Err(ApiError::NotFound(format!("no agent named {name}")));
    }
    let call = GatedCall::AgentSecrets {
        agent: name,
        secrets,
    };
    gate(st, principal, headers, request, call).await
}

/// Scope `jobs:create`. The agent's egress policy: every job of the agent
/// may reach only these hosts (exact names, `*.suffix`, or `"*"`), on top
/// of the job's own allow list; `None` lifts it. Gated (`policy.change`).
pub async fn set_egress(
    st: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    request: &RequestId,
    name: String,
    allow_hosts: Option<Vec<String>>,
) -> ApiResult<GateOutcome> {
    checked_agent(&name)?;
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
    gate(st, principal, headers, request, call).await
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
