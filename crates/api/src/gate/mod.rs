//! The one approval gate (SPEC §7).
//!
//! Every handler of a gateable verb validates its input, builds a
//! [`GatedCall`] and hands it to [`gate`]; nothing else runs a gated
//! verb. The gate asks the domain rule ([`gate_decision`]) and then either
//! runs the call at once (a human session; an `api` token with
//! `approval:bypass` and a reason, audited with it) or stores it with no
//! other effect. Either way it answers a typed [`GateOutcome`]; its one
//! conversion to HTTP (`IntoResponse`: the plain route's status and body,
//! or `202` with `Location`) serves the JSON handlers, and the MCP tools
//! read the same value. An approved request later runs
//! through the very same [`run`] function, with the parameters stored at
//! request time, exactly once (see the store's `run_gated`).
//!
//! The gate holds the store's one [`GateKey`] ([`Gatekeeper`]): the store
//! runs gated actions, and so writes or deletes secrets, only for its
//! holder, and nothing outside this module can read it.

mod calls;
mod notify;
mod run;
pub mod sweeper;

use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use gatehouse_domain::approvals::{
    gate_decision, params_digest, ApprovalStatus, DecideRefusal, GateDecision, Verb,
};
use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::codes::random_id;
use gatehouse_domain::crypto::{self, Purpose};
use gatehouse_domain::{CredentialClass, Principal};
use gatehouse_store::{ApprovalRecord, GateKey, Requester};

use crate::error::{ApiError, ApiResult};
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

pub use calls::{GatedCall, JobPlan, McpAuthPlan, McpServerPlan, SecretWrite};
pub use run::{execute_approved, requester_result};

/// The store's gate key, held for the gate's own use: the field is
/// private to this module and its children.
pub struct Gatekeeper {
    key: GateKey,
}

impl Gatekeeper {
    /// Taken once at start from [`gatehouse_store::Store::take_gate_key`].
    pub fn new(key: GateKey) -> Self {
        Self { key }
    }
}

/// The header that, on an `api` token with `approval:bypass`, runs a
/// gated verb directly. Its value is the reason, kept in the audit log.
pub const BYPASS_HEADER: &str = "gatehouse-approval-bypass";

/// The bypass reason a request carries. A reason that is present is
/// checked whoever sends it and whatever the route (a human's is ignored,
/// but a malformed header is still a malformed request: 400).
pub fn bypass_reason(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(v) = headers.get(BYPASS_HEADER) else {
        return Ok(None);
    };
    let text = v
        .to_str()
        .map_err(|_| ApiError::bad_request("Gatehouse-Approval-Bypass must be printable text"))?;
    gatehouse_domain::approvals::validate_bypass_reason(text)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Some(text))
}

/// Middleware: [`bypass_reason`] on every request, so a route that only
/// sometimes reaches the gate (a job without value grants) refuses a
/// malformed header the same way.
pub async fn refuse_malformed_bypass(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match bypass_reason(req.headers()) {
        Ok(_) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// What the gate did with a call.
#[derive(Debug, Clone, PartialEq)]
pub enum GateOutcome {
    /// It ran now (a human session, a bypass): the plain route's answer.
    /// `body` is `Null` exactly when the route answers without one (`204`).
    Ran { status: StatusCode, body: Value },
    /// It waits for a human; nothing else changed.
    Held(Held),
}

/// A request stored for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub approval_id: String,
    pub verb: Verb,
    pub expires_at: UnixTime,
}

impl Held {
    /// `{"approval_id","status":"pending","verb","expires_at"}` (SPEC §7).
    pub fn body(&self) -> Value {
        json!({
            "approval_id": self.approval_id,
            "status": "pending",
            "verb": self.verb.as_str(),
            "expires_at": rfc3339(self.expires_at),
        })
    }

    /// Where the requester polls it.
    pub fn location(&self) -> String {
        format!("/v1/approvals/{}", self.approval_id)
    }
}

/// The one conversion to HTTP: the route's own status and body, or `202`
/// with `Location: /v1/approvals/{id}`.
impl IntoResponse for GateOutcome {
    fn into_response(self) -> Response {
        match self {
            GateOutcome::Ran {
                status,
                body: Value::Null,
            } => status.into_response(),
            GateOutcome::Ran { status, body } => (status, Json(body)).into_response(),
            GateOutcome::Held(held) => (
                StatusCode::ACCEPTED,
                [(LOCATION, held.location())],
                Json(held.body()),
            )
                .into_response(),
        }
    }
}

/// Runs `call` for `principal`, or holds it for approval.
pub async fn gate(
    st: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    request: &RequestId,
    call: GatedCall,
) -> ApiResult<GateOutcome> {
    let bypass = bypass_reason(headers)?;
    let decision = gate_decision(&st.config.approvals.gates, call.verb(), principal, bypass)
        .map_err(|e: DecideRefusal| ApiError::bad_request(e.to_string()))?;
    match decision {
        GateDecision::Run => run::run_now(st, principal, request, &call, None).await,
        GateDecision::Bypass { reason } => {
            let event = audit_event(
                principal,
                "approval.bypass",
                call.verb().as_str(),
                &format!("bypassed: {reason}"),
                request,
            );
            run::run_now(st, principal, request, &call, Some(event)).await
        }
        GateDecision::Hold => hold(st, principal, request, &call).await,
    }
}

/// Who asked, as stored with the approval.
pub fn requester_of(principal: &Principal) -> Requester {
    let (agent, job) = match principal.class {
        CredentialClass::Agent => (Some(principal.subject.clone()), None),
        CredentialClass::Job => match principal.subject.split_once('/') {
            Some((agent, job)) => (Some(agent.to_string()), Some(job.to_string())),
            None => (None, None),
        },
        CredentialClass::Api | CredentialClass::Session => (None, None),
    };
    Requester {
        class: principal.class,
        subject: principal.subject.clone(),
        jti: principal.jti.clone(),
        agent,
        job,
    }
}

/// Stores the request (a secret value sealed, never shown) and answers
/// where to poll. Nothing else changes.
async fn hold(
    st: &AppState,
    principal: &Principal,
    request: &RequestId,
    call: &GatedCall,
) -> ApiResult<GateOutcome> {
    let owner = &principal.owner;
    let data_key = st
        .data_key(owner)
        .await?
        .ok_or_else(|| ApiError::forbidden("owner_unknown", "the owner has no data key"))?;
    let verb = call.verb();
    let id = random_id();
    let (params, secret) = call.stored_params(&data_key);
    let sealed = secret.map(|value| {
        crypto::seal(
            &data_key,
            Purpose::ApprovalPayload,
            &[owner.as_str(), &id, "request"],
            value.expose(),
        )
    });
    let now = st.now();
    let record = ApprovalRecord {
        id: id.clone(),
        owner: owner.clone(),
        verb: verb.as_str().into(),
        params: params.to_string(),
        params_digest: params_digest(verb, &params).to_vec(),
        sealed,
        requester: requester_of(principal),
        status: ApprovalStatus::Pending,
        required: st.config.approvals.gates.required(verb),
        created_at: now,
        expires_at: now + st.config.approvals.ttl_seconds,
        updated_at: now,
        result: None,
        sealed_result: None,
        error: None,
        decisions: Vec::new(),
    };
    let event = audit_event(
        principal,
        "approval.request",
        &format!("{id} {verb}"),
        "pending",
        request,
    );
    st.store.create_approval(&record, event, now).await?;
    st.approval_feed.announce(st.store.as_ref(), &id).await;
    notify::announce(st, &record, &params);
    Ok(GateOutcome::Held(Held {
        approval_id: id,
        verb,
        expires_at: record.expires_at,
    }))
}
