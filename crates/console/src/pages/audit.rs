//! The audit log, paged and filtered by action (the same function as
//! `GET /v1/audit`), and a check of the hash chain: the whole chain for
//! the operator, each of their own records for an owner.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use gatehouse_api::app::audit as app;
use gatehouse_api::state::AppState;

use crate::human::Human;
use crate::layout::{error_page, frame, when};

const PAGE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    since_seq: Option<i64>,
    action: Option<String>,
    verify: Option<String>,
}

/// Human session with `audit:read`.
pub async fn page(State(st): State<AppState>, who: Human, Query(q): Query<AuditQuery>) -> Response {
    let action = q.action.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let since = q.since_seq.unwrap_or(0);
    let records = match app::page(&st, &who.principal, Some(since), Some(PAGE), action).await {
        Ok(r) => r,
        Err(e) => return error_page(Some(&who), &e),
    };
    let check = if q.verify.is_some() {
        match app::verify(&st, &who.principal).await {
            Ok(c) => Some(c),
            Err(e) => return error_page(Some(&who), &e),
        }
    } else {
        None
    };
    let next = records.next_since;
    frame(
        StatusCode::OK,
        "Audit log",
        Some(&who),
        "/audit",
        html! {
            form.inline method="get" action="/audit" {
                label for="action" { "Action starts with" }
                input #action type="text" name="action" value=(action.unwrap_or_default()) placeholder="approval." autocomplete="off";
                button type="submit" { "Filter" }
            }
            form.inline method="get" action="/audit" {
                input type="hidden" name="verify" value="1";
                button type="submit" { "Verify the chain" }
            }
            @if let Some(check) = &check {
                @match check {
                    app::ChainCheck::Intact { records } => p.notice role="status" { strong { "Chain intact: " } (records) " records, every hash and link checked." }
                    app::ChainCheck::OwnIntact { records } => p.notice role="status" { strong { "Your records intact: " } (records) " records, each hash checked (the operator verifies the whole chain)." }
                    app::ChainCheck::Broken { seq, reason } => div.error role="alert" { p { strong { "Chain BROKEN at record " (seq) ": " } (reason) } }
                }
            }
            table {
                caption { "Records after " (since) @if let Some(a) = action { ", action starting with " q { (a) } } }
                thead { tr { th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Actor" } th scope="col" { "Class" }
                    th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Outcome" } } }
                tbody {
                    @if records.records.is_empty() { tr { td colspan="7" { "No records." } } }
                    @for r in &records.records {
                        tr {
                            td { (r.seq) } td { (when(r.ts)) } td { (r.actor) } td { (r.cls) }
                            td { code { (r.action) } } td { (r.target) } td { (r.outcome) }
                        }
                    }
                }
            }
            @if let Some(next) = next {
                p { a href={"/audit?since_seq=" (next) @if let Some(a) = action { "&action=" (urlencode(a)) } } { "Next page" } }
            }
        },
    )
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
