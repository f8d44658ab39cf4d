//! Secrets: names and bindings (never values), written through a masked
//! field and deleted, by the same functions as `PUT` and
//! `DELETE /v1/secrets/{name}` (a human session runs them at once).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use gatehouse_api::app::secrets as app;
use gatehouse_api::error::ApiError;
use gatehouse_api::request_id::RequestId;
use gatehouse_api::state::AppState;
use gatehouse_domain::SecretBytes;

use crate::csrf_form::{CsrfForm, TokenOnly};
use crate::human::{see_other, Human};
use crate::layout::{csrf_field, error_box, error_page, frame, notice, when};

async fn render(
    st: &AppState,
    who: &Human,
    status: StatusCode,
    done: Option<&str>,
    error: Option<&ApiError>,
) -> Response {
    let secrets = match app::list(st, &who.principal).await {
        Ok(s) => s,
        Err(e) => return error_page(Some(who), &e),
    };
    frame(
        status,
        "Secrets",
        Some(who),
        "/secrets",
        html! {
            p { "Values are sealed under your own data key and never shown again; jobs get placeholders that Gatehouse swaps only towards the bound hosts." }
            (notice(done))
            (error_box(error))
            table {
                caption { "Your secrets" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Bound hosts" } th scope="col" { "Injected header" }
                    th scope="col" { "Updated" } th scope="col" { span.sr { "Delete" } } } }
                tbody {
                    @if secrets.is_empty() { tr { td colspan="5" { "No secrets yet." } } }
                    @for s in &secrets {
                        @let hosts: Vec<String> = serde_json::from_str(&s.allowed_hosts).unwrap_or_default();
                        tr {
                            td { code { (s.name) } }
                            td { @if hosts.is_empty() { "none (never swapped)" } @else { (hosts.join(", ")) } }
                            td { @if let Some(i) = &s.inject { code { (i) } } @else { "—" } }
                            td { (when(s.updated_at)) }
                            td {
                                form method="post" action={"/secrets/" (s.name) "/delete"} {
                                    (csrf_field(who))
                                    button.deny type="submit" { "Delete" span.sr { " " (s.name) } }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Write a secret" }
            form method="post" action="/secrets" {
                (csrf_field(who))
                label for="name" { "Name" }
                input #name type="text" name="name" required pattern="[A-Za-z0-9_.\\-]{1,128}" autocomplete="off";
                label for="value" { "Value (hidden as you type; never shown again)" }
                input #value type="password" name="value" required autocomplete="off";
                label for="allowed_hosts" { "Allowed hosts (comma-separated: api.github.com, *.example.com)" }
                input #allowed_hosts type="text" name="allowed_hosts" autocomplete="off";
                label for="inject_header" { "Inject header (optional, e.g. Authorization)" }
                input #inject_header type="text" name="inject.header" autocomplete="off";
                label for="inject_format" { "Inject format (optional, e.g. Bearer {value})" }
                input #inject_format type="text" name="inject.format" autocomplete="off";
                button type="submit" { "Save secret" }
            }
        },
    )
}

#[derive(Deserialize, Default)]
pub struct Done {
    ok: Option<String>,
}

/// Human session with `secrets:write`.
pub async fn page(State(st): State<AppState>, who: Human, Query(q): Query<Done>) -> Response {
    let done = match q.ok.as_deref() {
        Some("written") => Some("the secret is saved."),
        Some("deleted") => Some("the secret is deleted; its placeholders are dead."),
        _ => None,
    };
    render(&st, &who, StatusCode::OK, done, None).await
}

#[derive(Deserialize)]
pub struct WriteForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    allowed_hosts: String,
    #[serde(default, rename = "inject.header")]
    inject_header: String,
    #[serde(default, rename = "inject.format")]
    inject_format: String,
}

/// Like `PUT /v1/secrets/{name}` (same function), CSRF token required.
pub async fn write(
    State(st): State<AppState>,
    request: RequestId,
    CsrfForm(who, body): CsrfForm<WriteForm>,
) -> Response {
    let inject = match (body.inject_header.trim(), body.inject_format.trim()) {
        ("", "") => None,
        (header, format) => Some(app::Inject {
            header: header.to_string(),
            format: format.to_string(),
        }),
    };
    let input = app::SecretInput {
        value: SecretBytes::from_string(body.value),
        allowed_hosts: super::list_field(&body.allowed_hosts),
        inject,
    };
    match app::put(
        &st,
        &who.principal,
        &HeaderMap::new(),
        &request,
        body.name,
        input,
    )
    .await
    {
        Ok(_) => see_other("/secrets?ok=written"),
        Err(e) => render(&st, &who, e.status(), None, Some(&e)).await,
    }
}

/// Like `DELETE /v1/secrets/{name}` (same function), CSRF token required.
pub async fn delete(
    State(st): State<AppState>,
    Path(name): Path<String>,
    request: RequestId,
    CsrfForm(who, TokenOnly {}): CsrfForm<TokenOnly>,
) -> Response {
    match app::delete(&st, &who.principal, &HeaderMap::new(), &request, name).await {
        Ok(_) => see_other("/secrets?ok=deleted"),
        Err(e) => render(&st, &who, e.status(), None, Some(&e)).await,
    }
}
