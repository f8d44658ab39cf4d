//! Approvals: listing, reading and deciding (SPEC §7). Another owner's
//! approval answers like an unknown id (404): the answer says nothing
//! about what other tenants asked for.

use serde_json::{json, Value};

use gatehouse_domain::approvals::{may_decide, ApprovalStatus, DecideRefusal, Decision};
use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::Principal;
use gatehouse_store::{ApprovalDecision, ApprovalFilter, ApprovalRecord, DecideResult};

use crate::error::{ApiError, ApiResult};
use crate::gate::{execute_approved, requester_result, sweeper};
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

const MAX_REASON: usize = 500;
/// A decision's reason as the check below reads it (after trimming).
pub const REASON_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]{0,500}$";
const DEFAULT_LIMIT: i64 = 100;

pub fn is_requester(principal: &Principal, approval: &ApprovalRecord) -> bool {
    principal.owner == approval.owner
        && principal.class == approval.requester.class
        && principal.subject == approval.requester.subject
}

/// A human of the approval's owner, or the operator.
fn may_see_as_decider(principal: &Principal, approval: &ApprovalRecord) -> bool {
    principal.is_human() && (principal.owner == approval.owner || principal.is_operator())
}

/// Whether `principal` may see `approval` at all: its requester, a
/// human of its owner, or the operator.
pub fn visible(principal: &Principal, approval: &ApprovalRecord) -> bool {
    is_requester(principal, approval) || may_see_as_decider(principal, approval)
}

/// How many humans approved so far.
pub fn approvals_so_far(approval: &ApprovalRecord) -> usize {
    approval
        .decisions
        .iter()
        .filter(|d| d.decision == Decision::Approve)
        .count()
}

/// Humans: their owner's approvals (the operator: everyone's). Other
/// credentials: only the requests they made themselves.
pub async fn list(
    st: &AppState,
    principal: &Principal,
    status: Option<&str>,
    limit: Option<i64>,
) -> ApiResult<Vec<ApprovalRecord>> {
    let status = match status {
        None | Some("") => None,
        Some(s) => Some(ApprovalStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status must be one of pending, approved, executing, executed, failed, denied, expired, not {s:?}"
            ))
        })?),
    };
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be within 1..=1000"));
    }
    sweeper::expire_due(st).await;
    let filter = ApprovalFilter {
        owner: (!(principal.is_human() && principal.is_operator()))
            .then(|| principal.owner.clone()),
        status,
        requester: (!principal.is_human()).then(|| (principal.class, principal.subject.clone())),
        limit,
    };
    Ok(st.store.approvals(&filter).await?)
}

/// The requester (to poll its own), a human of the owner, or the operator.
pub async fn get(st: &AppState, principal: &Principal, id: &str) -> ApiResult<ApprovalRecord> {
    sweeper::expire_due(st).await;
    st.store
        .approval(id)
        .await?
        .filter(|a| visible(principal, a))
        .ok_or_else(|| ApiError::NotFound("no such approval".into()))
}

/// `GET /v1/approvals/{id}` (and the MCP `approval_status` tool): the
/// approval as [`view`] shows it to this caller; for the requesting token,
/// what it produced, once.
pub async fn shown(st: &AppState, principal: &Principal, id: &str) -> ApiResult<Value> {
    let approval = get(st, principal, id).await?;
    Ok(view(st, &approval, requesting_jti(principal, &approval)).await)
}

/// A human session of the owner, or the operator; never the requester.
/// Agent, job and api credentials: 403. Not pending (decided, expired,
/// executed): 409. The decision that completes the approval also runs it.
/// Returns the approval as it stands afterwards.
pub async fn decide(
    st: &AppState,
    principal: &Principal,
    id: &str,
    decision: &str,
    reason: &str,
    request: &RequestId,
) -> ApiResult<ApprovalRecord> {
    let decision = Decision::parse(decision)
        .ok_or_else(|| ApiError::bad_request("decision must be \"approve\" or \"deny\""))?;
    let reason = reason.trim().to_string();
    if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "reason must be at most {MAX_REASON} printable characters"
        )));
    }
    let approval = st
        .store
        .approval(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such approval".into()))?;
    may_decide(
        principal,
        &approval.owner,
        approval.requester.class,
        &approval.requester.subject,
    )
    .map_err(|refusal| match refusal {
        DecideRefusal::OtherOwner => ApiError::NotFound("no such approval".into()),
        other => ApiError::forbidden("not_a_decider", other.to_string()),
    })?;
    let now = st.now();
    let record = ApprovalDecision {
        decider: principal.subject.clone(),
        decision,
        reason: reason.clone(),
        decided_at: now,
    };
    let mut event = audit_event(
        principal,
        "approval.decide",
        &format!("{id} {}", approval.verb),
        decision.as_str(),
        request,
    );
    if !reason.is_empty() {
        event.outcome = format!("{}: {reason}", decision.as_str());
    }
    event.owner = approval.owner.as_str().into();
    let result = st.store.decide_approval(id, &record, event, now).await?;
    st.approval_feed.announce(st.store.as_ref(), id).await;
    match result {
        DecideResult::NotFound => return Err(ApiError::NotFound("no such approval".into())),
        DecideResult::NotPending(status) => {
            return Err(ApiError::Conflict(format!(
                "the approval is {status}, not pending"
            )))
        }
        DecideResult::AlreadyDecided => {
            return Err(ApiError::Conflict(
                "you have already decided on this approval".into(),
            ))
        }
        DecideResult::Recorded(ApprovalStatus::Approved) => {
            if let Err(e) = execute_approved(st, &approval).await {
                // Left `approved`: the sweeper runs it once the store is back.
                tracing::warn!(approval = %id, "running the approved request failed: {}", e.message());
            }
            st.approval_feed.announce(st.store.as_ref(), id).await;
        }
        DecideResult::Recorded(_) => {}
    }
    st.store
        .approval(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such approval".into()))
}

/// The requesting token itself (by jti, not merely its subject): the one
/// credential that may read what the approval produced for it.
pub fn requesting_jti<'a>(principal: &'a Principal, approval: &ApprovalRecord) -> Option<&'a str> {
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

/// The approval as `GET /v1/approvals/{id}` shows it; with the
/// requesting token's jti, what it produced is included (and taken: once).
pub async fn view(st: &AppState, a: &ApprovalRecord, requester_jti: Option<&str>) -> Value {
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
        "approvals": approvals_so_far(a),
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
