//! Upstream credentials: the status of each upstream the person owns
//! (valid or not, until when, last rotation) and the one-shot paste of a
//! personal access token, through the same function as
//! `PUT /v1/upstreams/{name}/credential`. Its refusals (400 empty, 403
//! not the owner or identity mismatch, 409 already active) are shown with
//! their status and code.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use gatehouse_api::app::upstreams as app;
use gatehouse_api::error::ApiError;
use gatehouse_api::request_id::RequestId;
use gatehouse_api::state::AppState;
use gatehouse_domain::SecretBytes;

use crate::csrf_form::CsrfForm;
use crate::human::{see_other, Human};
use crate::layout::{csrf_field, error_box, error_page, frame, notice};

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("—")
}

async fn render(
    st: &AppState,
    who: &Human,
    status: StatusCode,
    done: Option<&str>,
    error: Option<(&str, &ApiError)>,
) -> Response {
    let upstreams = match app::list(st, &who.principal).await {
        Ok(u) => u,
        Err(e) => return error_page(Some(who), &e),
    };
    frame(
        status,
        "Upstreams",
        Some(who),
        "/upstreams",
        html! {
            p { "Gatehouse exchanges a pasted personal access token for short-lived ones it mints and rotates itself; the pasted token is revoked at once." }
            (notice(done))
            @if upstreams.is_empty() {
                p { "No upstream is configured for you. The operator adds them to " code { "gatehouse.toml" } " (" code { "[[upstream]]" } ")." }
            }
            @for u in &upstreams {
                @let name = text(u, "name");
                section.card aria-labelledby={"up-" (name)} {
                    h2 #{"up-" (name)} { (name) " " span.small { "(" (text(u, "driver")) ")" } }
                    dl.facts {
                        dt { "Status" }
                        dd {
                            @if u["valid"].as_bool() == Some(true) { span.badge.status-valid { "valid" } }
                            @else if u["configured"].as_bool() == Some(true) { span.badge.status-expired { "expired" } }
                            @else { span.badge.status-none { "no credential" } }
                        }
                        dt { "Expires" } dd { (text(u, "expires_at")) }
                        dt { "Last rotation" } dd { (text(u, "last_rotation")) }
                        dt { "Rotates every" } dd { (u["rotate_every_seconds"]) " s" }
                    }
                    @if let Some((failed, e)) = error { @if failed == name { (error_box(Some(e))) } }
                    form method="post" action={"/upstreams/" (name) "/credential"} {
                        (csrf_field(who))
                        label for={"token-" (name)} { "Personal access token for " (name) }
                        input id={"token-" (name)} type="password" name="token" autocomplete="off" required;
                        button type="submit" { "Hand over the token" }
                    }
                }
            }
        },
    )
}

#[derive(Deserialize, Default)]
pub struct Done {
    ok: Option<String>,
}

/// Human session: the upstreams the person owns.
pub async fn page(State(st): State<AppState>, who: Human, Query(q): Query<Done>) -> Response {
    let done = match q.ok.as_deref() {
        Some("credential") => {
            Some("the token was verified, exchanged and revoked; Gatehouse now rotates its own.")
        }
        _ => None,
    };
    render(&st, &who, StatusCode::OK, done, None).await
}

#[derive(Deserialize)]
pub struct PasteForm {
    #[serde(default)]
    token: String,
}

/// The upstream's owner, human session, CSRF token required.
pub async fn paste(
    State(st): State<AppState>,
    Path(name): Path<String>,
    request: RequestId,
    CsrfForm(who, body): CsrfForm<PasteForm>,
) -> Response {
    let token = SecretBytes::from_string(body.token);
    match app::put_credential(&st, &who.principal, &name, token, &request).await {
        Ok(_) => see_other("/upstreams?ok=credential"),
        Err(e) => render(&st, &who, e.status(), None, Some((&name, &e))).await,
    }
}
