//! Approvals: requesters poll their own, humans list and decide.
//!
//! Another owner's approval answers like an unknown id (404): the answer
//! says nothing about what other tenants asked for.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

use gatehouse_domain::approvals::ApprovalStatus;
use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::Principal;
use gatehouse_store::ApprovalRecord;

use crate::app::approvals::{self as app, is_requester};
use crate::error::ApiResult;
use crate::gate::requester_result;
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::AppState;

/// The requesting token itself (by jti, not merely its subject): the one
/// credential that may read what the approval produced for it.
fn requesting_jti<'a>(principal: &'a Principal, approval: &ApprovalRecord) -> Option<&'a str> {
    let jti = principal.jti.as_deref()?;
    (is_requester(principal, approval) && approval.requester.jti.as_deref() == Some(jti))
        .then_some(jti)
}

/// What the approval produced for its requester (a minted api token, a
/// job token), shown once: taking it clears it from the store, so a
/// second poll, or another token of the same subject, never sees it.
async fn take_produced(st: &AppState, a: &ApprovalRecord, jti: Option<&str>) -> Option<String> {
    let jti = jti?;
    if a.status != ApprovalStatus::Executed || a.sealed_result.is_none() {
        return None;
    }
    let secret = requester_result(st, a).await?;
    match st.store.take_approval_result(&a.id, jti, st.now()).await {
        Ok(true) => secret.expose_str().map(str::to_string),
        Ok(false) => None,
        Err(e) => {
            tracing::warn!(approval = %a.id, "taking an approval's result failed: {e}");
            None
        }
    }
}

async fn view(st: &AppState, a: &ApprovalRecord, requester_jti: Option<&str>) -> Value {
    let params: Value = serde_json::from_str(&a.params).unwrap_or(Value::Null);
    let mut result: Value = a
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or(Value::Null);
    if let Some(produced) = take_produced(st, a, requester_jti).await {
        let (field, value) = match a.verb.as_str() {
            "job.grant_values" => ("job_token", json!(produced)),
            // A gated MCP tool's answer (MCP `CallToolResult` JSON).
            "mcp.tool" => (
                "tool_result",
                serde_json::from_str(&produced).unwrap_or(Value::Null),
            ),
            _ => ("token", json!(produced)),
        };
        if let Some(obj) = result.as_object_mut() {
            obj.insert(field.into(), value);
        }
    }
    json!({
        "approval_id": a.id,
        "status": a.status.as_str(),
        "verb": a.verb,
        "owner": a.owner.as_str(),
        "requester": {
            "cls": a.requester.class.as_str(),
            "subject": a.requester.subject,
        },
        "params": params,
        "params_digest": hex::encode(&a.params_digest),
        "required": a.required,
        "approvals": app::approvals_so_far(a),
        "decisions": a.decisions.iter().map(|d| json!({
            "by": d.decider,
            "decision": d.decision.as_str(),
            "reason": d.reason,
            "at": rfc3339(d.decided_at),
        })).collect::<Vec<_>>(),
        "created_at": rfc3339(a.created_at),
        "expires_at": rfc3339(a.expires_at),
        "updated_at": rfc3339(a.updated_at),
        "result": result,
        "error": a.error,
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only approvals in this state (empty: any).
    #[param(schema_with = crate::openapi::grammar::approval_status)]
    status: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Humans: their owner's approvals (the operator: everyone's). Other
/// credentials: only the requests they made themselves.
pub async fn list(
    principal: Principal,
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let approvals = app::list(&st, &principal, q.status.as_deref(), q.limit).await?;
    let mut out = Vec::with_capacity(approvals.len());
    for a in &approvals {
        out.push(view(&st, a, requesting_jti(&principal, a)).await);
    }
    Ok(Json(out))
}

/// The requester (to poll its own), a human of the owner, or the operator.
pub async fn get(
    principal: Principal,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let approval = app::get(&st, &principal, &id).await?;
    Ok(Json(
        view(&st, &approval, requesting_jti(&principal, &approval)).await,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    #[schema(schema_with = crate::openapi::grammar::decision)]
    decision: String,
    /// Audited with the decision.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::grammar::reason)]
    reason: String,
}

/// A human session of the owner, or the operator; never the requester
/// (`app::approvals::decide`).
pub async fn decide(
    principal: Principal,
    State(st): State<AppState>,
    Path(id): Path<String>,
    request: RequestId,
    ApiJson(body): ApiJson<DecisionBody>,
) -> ApiResult<Json<Value>> {
    let fresh = app::decide(&st, &principal, &id, &body.decision, &body.reason, &request).await?;
    Ok(Json(view(&st, &fresh, None).await))
}
