//! The inbox and one approval: what is asked, by whom, bound to which
//! parameters (a secret value only as its length and keyed fingerprint,
//! exactly as the API shows it), until when, and how many approvals it
//! still needs. The inbox updates itself through
//! `GET /v1/approvals/events` when JavaScript runs; without it, the
//! page is complete and a reload shows new requests.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use gatehouse_api::app::approvals as app;
use gatehouse_api::error::ApiError;
use gatehouse_api::request_id::RequestId;
use gatehouse_api::state::AppState;
use gatehouse_domain::approvals::{ApprovalStatus, Decision};
use gatehouse_store::ApprovalRecord;

use crate::csrf_form::CsrfForm;
use crate::human::{see_other, Human};
use crate::layout::{csrf_field, error_box, error_page, frame, notice, when};

#[derive(Deserialize, Default)]
pub struct InboxQuery {
    status: Option<String>,
}

fn approvals_of(a: &ApprovalRecord) -> usize {
    a.decisions
        .iter()
        .filter(|d| d.decision == Decision::Approve)
        .count()
}

fn progress(a: &ApprovalRecord) -> Markup {
    html! { (approvals_of(a)) " of " (a.required) " approvals" }
}

fn status_badge(status: ApprovalStatus) -> Markup {
    html! { span class={"badge status-" (status.as_str())} { (status.as_str()) } }
}

/// The parameters as the API shows them, one line per field.
fn params(a: &ApprovalRecord) -> Markup {
    let value: Value = serde_json::from_str(&a.params).unwrap_or(Value::Null);
    html! {
        @match value.as_object() {
            Some(map) if !map.is_empty() => {
                dl.params {
                    @for (k, v) in map {
                        dt { (k) }
                        dd { code { (compact(v)) } }
                    }
                }
            }
            _ => { code { (compact(&value)) } }
        }
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Human session: the owner's requests (the operator's: everyone's).
pub async fn inbox(
    State(st): State<AppState>,
    who: Human,
    Query(q): Query<InboxQuery>,
) -> Response {
    let status = q.status.as_deref().unwrap_or("pending");
    let approvals = match app::list(&st, &who.principal, Some(status), Some(200)).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(&who), &e),
    };
    frame(
        StatusCode::OK,
        "Approvals",
        Some(&who),
        "/approvals",
        html! {
            p { "Requests that wait for a person. Agents and tokens cannot decide; you cannot decide your own." }
            form.inline method="get" action="/approvals" {
                label for="status" { "Show" }
                select #status name="status" {
                    @for s in ["pending", "approved", "executed", "failed", "denied", "expired"] {
                        option value=(s) selected[s == status] { (s) }
                    }
                }
                button type="submit" { "Filter" }
            }
            p #live-status role="status" data-events="/v1/approvals/events" {
                "Reload to see new requests (live updates need JavaScript)."
            }
            table #inbox-table {
                caption { (status) " requests" }
                thead { tr { th scope="col" { "Verb" } th scope="col" { "Requested by" } th scope="col" { "Parameters" }
                    th scope="col" { "Expires" } th scope="col" { "Progress" } th scope="col" { "Status" } th scope="col" { span.sr { "Open" } } } }
                tbody #inbox {
                    @if approvals.is_empty() {
                        tr { td colspan="7" { "Nothing " (status) " right now." } }
                    }
                    @for a in &approvals {
                        tr data-approval=(a.id) {
                            td { code { (a.verb) } }
                            td { (a.requester.class.as_str()) " " strong { (a.requester.subject) } }
                            td { (params(a)) }
                            td { time datetime=(when(a.expires_at)) { (when(a.expires_at)) } }
                            td { (progress(a)) }
                            td { (status_badge(a.status)) }
                            td { a href={"/approvals/" (a.id)} { "Review" span.sr { " " (a.verb) " " (a.id) } } }
                        }
                    }
                }
            }
        },
    )
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    ok: Option<String>,
}

fn detail_page(
    who: &Human,
    a: &ApprovalRecord,
    status: StatusCode,
    done: Option<&str>,
    error: Option<&ApiError>,
) -> Response {
    frame(
        status,
        &format!("Approval {}", a.id),
        Some(who),
        "/approvals",
        html! {
            (notice(done))
            (error_box(error))
            dl.facts {
                dt { "Status" } dd { (status_badge(a.status)) }
                dt { "Verb" } dd { code { (a.verb) } }
                dt { "Requested by" } dd { (a.requester.class.as_str()) " " strong { (a.requester.subject) } }
                dt { "Owner" } dd { (a.owner.as_str()) }
                dt { "Requested at" } dd { (when(a.created_at)) }
                dt { "Expires" } dd { time datetime=(when(a.expires_at)) { (when(a.expires_at)) } }
                dt { "Progress" } dd { (progress(a)) }
                dt { "Parameter digest" } dd { code { (hex::encode(&a.params_digest)) } }
            }
            h2 { "Exactly these parameters" }
            p.small { "An approval runs with the parameters stored when it was asked; a secret value is shown only as its length and fingerprint." }
            (params(a))
            @if !a.decisions.is_empty() {
                h2 { "Decisions" }
                ul {
                    @for d in &a.decisions {
                        li { strong { (d.decision.as_str()) } " by " (d.decider) " at " (when(d.decided_at))
                            @if !d.reason.is_empty() { ": " q { (d.reason) } } }
                    }
                }
            }
            @if let Some(err) = &a.error { p { strong { "Error: " } (err) } }
            @if a.status == ApprovalStatus::Pending {
                h2 { "Decide" }
                form method="post" action={"/approvals/" (a.id)} {
                    (csrf_field(who))
                    label for="reason" { "Reason (kept in the audit log)" }
                    textarea #reason name="reason" maxlength="500" rows="3" {}
                    div.buttons {
                        button.approve type="submit" name="decision" value="approve" { "Approve" }
                        button.deny type="submit" name="decision" value="deny" { "Deny" }
                    }
                }
            }
            p { a href="/approvals" { "Back to the inbox" } }
        },
    )
}

/// Human session of the owner, or the operator.
pub async fn detail(
    State(st): State<AppState>,
    who: Human,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    match app::get(&st, &who.principal, &id).await {
        Ok(a) => {
            let done = q.ok.as_deref().and_then(|ok| match ok {
                "decided" => Some("your decision is recorded."),
                _ => None,
            });
            detail_page(&who, &a, StatusCode::OK, done, None)
        }
        Err(e) => error_page(Some(&who), &e),
    }
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

/// Like `POST /v1/approvals/{id}/decision` (same function), CSRF token
/// required.
pub async fn decide(
    State(st): State<AppState>,
    Path(id): Path<String>,
    request: RequestId,
    CsrfForm(who, body): CsrfForm<DecisionForm>,
) -> Response {
    match app::decide(
        &st,
        &who.principal,
        &id,
        &body.decision,
        &body.reason,
        &request,
    )
    .await
    {
        Ok(_) => see_other(&format!("/approvals/{id}?ok=decided")),
        Err(e) => match app::get(&st, &who.principal, &id).await {
            Ok(a) => detail_page(&who, &a, e.status(), None, Some(&e)),
            Err(_) => error_page(Some(&who), &e),
        },
    }
}
