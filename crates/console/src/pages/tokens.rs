//! Tokens of the owner (never their values) with the kill switch:
//! revoke one by jti, or every token of a subject, through the same
//! function as `POST /v1/tokens/revoke`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use gatehouse_api::app::tokens as app;
use gatehouse_api::error::ApiError;
use gatehouse_api::request_id::RequestId;
use gatehouse_api::state::AppState;

use crate::csrf_form::CsrfForm;
use crate::human::{see_other, Human};
use crate::layout::{csrf_field, error_box, error_page, frame, notice, when};

async fn render(
    st: &AppState,
    who: &Human,
    status: StatusCode,
    done: Option<&str>,
    error: Option<&ApiError>,
) -> Response {
    let tokens = match app::list(st, &who.principal).await {
        Ok(t) => t,
        Err(e) => return error_page(Some(who), &e),
    };
    frame(
        status,
        "Tokens",
        Some(who),
        "/tokens",
        html! {
            p { "Unexpired tokens issued for you. Revoking takes effect on every replica within a second." }
            (notice(done))
            (error_box(error))
            table {
                caption { "Your tokens" }
                thead { tr { th scope="col" { "Token id" } th scope="col" { "Class" } th scope="col" { "Subject" } th scope="col" { "Scope" }
                    th scope="col" { "Expires" } th scope="col" { "State" } th scope="col" { span.sr { "Revoke" } } } }
                tbody {
                    @if tokens.is_empty() { tr { td colspan="7" { "No live tokens." } } }
                    @for t in &tokens {
                        tr {
                            td { code { (t.token.jti) } " " button.copy type="button" data-copy=(t.token.jti) { "Copy" span.sr { " token id" } } }
                            td { (t.token.class.as_str()) }
                            td { (t.token.subject) }
                            td { @if t.token.scope.is_empty() { "—" } @else { (t.token.scope) } }
                            td { (when(t.token.exp)) }
                            td { @if t.revoked { span.badge.status-revoked { "revoked" } } @else { span.badge.status-valid { "active" } } }
                            td.actions {
                                @if !t.revoked {
                                    form method="post" action="/tokens/revoke" {
                                        (csrf_field(who))
                                        input type="hidden" name="jti" value=(t.token.jti);
                                        button.deny type="submit" { "Revoke" span.sr { " token " (t.token.jti) } }
                                    }
                                }
                                form method="post" action="/tokens/revoke" {
                                    (csrf_field(who))
                                    input type="hidden" name="subject" value=(t.token.subject);
                                    button.deny type="submit" { "Revoke all of " (t.token.subject) }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Revoke every token of a subject" }
            form method="post" action="/tokens/revoke" {
                (csrf_field(who))
                label for="subject" { "Subject (an agent name, or agent/job id)" }
                input #subject type="text" name="subject" required autocomplete="off";
                button.deny type="submit" { "Revoke all" }
            }
        },
    )
}

#[derive(Deserialize, Default)]
pub struct Done {
    ok: Option<String>,
}

/// Human session with `tokens:write`.
pub async fn page(State(st): State<AppState>, who: Human, Query(q): Query<Done>) -> Response {
    let done = match q.ok.as_deref() {
        Some("revoked") => Some("revoked."),
        _ => None,
    };
    render(&st, &who, StatusCode::OK, done, None).await
}

#[derive(Deserialize)]
pub struct RevokeForm {
    jti: Option<String>,
    subject: Option<String>,
}

/// Like `POST /v1/tokens/revoke` (same function), CSRF token required.
pub async fn revoke(
    State(st): State<AppState>,
    request: RequestId,
    CsrfForm(who, body): CsrfForm<RevokeForm>,
) -> Response {
    let target = match (body.jti, body.subject) {
        (Some(jti), None) => app::RevokeTarget::Jti(jti),
        (None, Some(subject)) => app::RevokeTarget::Subject(subject),
        _ => {
            let e = ApiError::bad_request("give exactly one of jti or subject");
            return render(&st, &who, e.status(), None, Some(&e)).await;
        }
    };
    match app::revoke(&st, &who.principal, &request, target).await {
        Ok(_) => see_other("/tokens?ok=revoked"),
        Err(e) => render(&st, &who, e.status(), None, Some(&e)).await,
    }
}
