//! A call to a gated tool (SPEC §13): nothing goes upstream. The call is
//! handed to the one gate as `mcp.tool` (server, tool, arguments; bound
//! by the digest; the inbox shows them). A human session runs it at once,
//! through the gate; any other credential is held. The agent's call then
//! waits up to `mcp.hold_seconds` for the decision, woken by the approval
//! feed (which also carries other replicas' decisions, PostgreSQL
//! NOTIFY), sending progress notifications each second so its client
//! keeps waiting, and answers:
//! - the real result, when humans approved and the gate ran it (once,
//!   after its claim; the result is sealed for the requesting token and
//!   taken here, so `GET /v1/approvals/{id}` no longer shows it);
//! - an error result naming the decision when denied, expired or failed;
//! - `pending` with the approval id when the hold runs out; the agent
//!   polls `GET /v1/approvals/{id}` (or the own tools' `approval_status`),
//!   which hands the result over once.
//!
//! While it waits, the caller's credential is checked again through the
//! one verifier whenever the revocation view changes (and every second):
//! a revoked credential ends the call.

use std::time::Duration;

use rmcp::model::{CallToolResult, ProgressNotificationParam};
use rmcp::service::RequestContext;
use rmcp::RoleServer;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::error::RecvError;

use gatehouse_api::error::ApiResult;
use gatehouse_api::gate::{gate, requester_result, GateOutcome, GatedCall};
use gatehouse_domain::approvals::ApprovalStatus;
use gatehouse_domain::clock::rfc3339;

use super::handler::{tool_error, CallContext};

/// How often a waiting call re-checks its credential and tells its client
/// it is still waiting.
const TICK: Duration = Duration::from_secs(1);

/// What the gate made of the call.
enum Outcome {
    /// Run at once (a human session, a bypass): the tool's result.
    Ran(CallToolResult),
    /// Held for a human.
    Held {
        approval_id: String,
        expires_at: String,
    },
    /// Refused before anything happened, with why.
    Refused(String),
}

/// What the gate's typed outcome means for the agent's call.
fn outcome_of(answer: ApiResult<GateOutcome>) -> Outcome {
    match answer {
        Err(e) => Outcome::Refused(e.message()),
        Ok(GateOutcome::Held(held)) => Outcome::Held {
            approval_id: held.approval_id,
            expires_at: rfc3339(held.expires_at),
        },
        Ok(GateOutcome::Ran { body, .. }) => match serde_json::from_value::<CallToolResult>(body) {
            Ok(result) => Outcome::Ran(result),
            Err(_) => Outcome::Refused("the tool's result could not be read".into()),
        },
    }
}

/// A call to a gated tool, from the agent's side.
pub async fn gated_call(
    call: &CallContext,
    ctx: &RequestContext<RoleServer>,
    tool: String,
    arguments: Map<String, Value>,
) -> CallToolResult {
    let gated = GatedCall::McpTool {
        server: call.plan.name.clone(),
        tool: tool.clone(),
        arguments: arguments.clone(),
    };
    let answer = gate(
        &call.st,
        &call.principal,
        &call.headers,
        &call.request,
        gated,
    )
    .await;
    match outcome_of(answer) {
        // The gate's run audited it (`mcp.tool`, with the digest).
        Outcome::Ran(result) => result,
        Outcome::Refused(why) => {
            call.audit(&tool, &arguments, "error:gate").await;
            tool_error(format!("tool {tool} could not be called: {why}"))
        }
        Outcome::Held {
            approval_id,
            expires_at,
        } => {
            call.audit(&tool, &arguments, &format!("held approval={approval_id}"))
                .await;
            wait(call, ctx, &approval_id, &expires_at, &tool).await
        }
    }
}

fn pending(approval_id: &str, expires_at: &str, tool: &str) -> CallToolResult {
    CallToolResult::structured(json!({
        "status": "pending",
        "approval_id": approval_id,
        "expires_at": expires_at,
        "poll": format!("/v1/approvals/{approval_id}"),
        "message": format!(
            "tool {tool} waits for a human's approval; ask again with approval_status or GET /v1/approvals/{approval_id}"
        ),
    }))
}

/// Waits for the decision, within `mcp.hold_seconds`.
async fn wait(
    call: &CallContext,
    ctx: &RequestContext<RoleServer>,
    approval_id: &str,
    expires_at: &str,
    tool: &str,
) -> CallToolResult {
    let st = &call.st;
    let deadline = tokio::time::Instant::now() + st.config.mcp.hold;
    let mut feed = st.approval_feed.subscribe();
    let mut view = st.auth.revocations.subscribe();
    let progress_token = ctx.meta.get_progress_token();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut waited = 0u32;
    let mut look = true;
    loop {
        if look {
            if let Some(done) = settled(call, approval_id, tool).await {
                return done;
            }
        }
        look = false;
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                return settled(call, approval_id, tool)
                    .await
                    .unwrap_or_else(|| pending(approval_id, expires_at, tool));
            }
            message = feed.recv() => match message {
                Ok(id) => look = id == approval_id,
                Err(RecvError::Lagged(_)) => look = true,
                Err(RecvError::Closed) => {
                    return pending(approval_id, expires_at, tool);
                }
            },
            changed = view.changed() => {
                if changed.is_err() || !call.still_valid().await {
                    return tool_error("the credential of this call no longer holds (revoked or expired); the call ended");
                }
            }
            _ = tick.tick() => {
                waited += 1;
                if !call.still_valid().await {
                    return tool_error("the credential of this call no longer holds (revoked or expired); the call ended");
                }
                if let Some(token) = &progress_token {
                    let note = ProgressNotificationParam::new(token.clone(), f64::from(waited))
                        .with_message(format!("waiting for a human to approve {tool} (approval {approval_id})"));
                    let _ = ctx.peer.notify_progress(note).await;
                }
                // The sweeper's expiry and other replicas' runs reach the
                // feed; a look each tick covers a missed announcement.
                look = true;
            }
            _ = ctx.ct.cancelled() => {
                return pending(approval_id, expires_at, tool);
            }
        }
    }
}

/// The approval's outcome for the agent, once there is one.
async fn settled(call: &CallContext, approval_id: &str, tool: &str) -> Option<CallToolResult> {
    let st = &call.st;
    let approval = match st.store.approval(approval_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return Some(tool_error(format!("approval {approval_id} is gone"))),
        Err(_) => return None,
    };
    let reason = |a: &gatehouse_store::ApprovalRecord| {
        a.decisions
            .iter()
            .rev()
            .find(|d| !d.reason.is_empty())
            .map(|d| format!(": {}", d.reason))
            .unwrap_or_default()
    };
    Some(match approval.status {
        ApprovalStatus::Pending | ApprovalStatus::Approved | ApprovalStatus::Executing => {
            return None
        }
        ApprovalStatus::Denied => tool_error(format!(
            "a human denied the call to {tool} (approval {approval_id}){}",
            reason(&approval)
        )),
        ApprovalStatus::Expired => tool_error(format!(
            "the approval {approval_id} for {tool} expired before a human decided"
        )),
        ApprovalStatus::Failed => tool_error(format!(
            "the approved call to {tool} failed (approval {approval_id}): {}",
            approval.error.as_deref().unwrap_or("unknown reason")
        )),
        ApprovalStatus::Executed => take_result(call, &approval).await,
    })
}

/// The executed call's result, taken once by the requesting token.
async fn take_result(
    call: &CallContext,
    approval: &gatehouse_store::ApprovalRecord,
) -> CallToolResult {
    let st = &call.st;
    let id = &approval.id;
    let taken_already = || {
        tool_error(format!(
            "the approved call ran (approval {id}); its result was already handed out"
        ))
    };
    let Some(jti) = call.principal.jti.as_deref() else {
        return taken_already();
    };
    if approval.requester.jti.as_deref() != Some(jti) {
        return taken_already();
    }
    let Some(sealed) = requester_result(st, approval).await else {
        return taken_already();
    };
    match st.store.take_approval_result(id, jti, st.now()).await {
        Ok(true) => {}
        _ => return taken_already(),
    }
    sealed
        .expose_str()
        .and_then(|text| serde_json::from_str::<CallToolResult>(text).ok())
        .unwrap_or_else(|| tool_error(format!("the result of approval {id} could not be read")))
}
