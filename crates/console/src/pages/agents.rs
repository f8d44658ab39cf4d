//! Agents and their ceilings: which hosts their jobs may reach (the
//! egress policy) and which secrets their own jobs may be granted (the
//! secret ceiling), shown and set through the same functions as
//! `GET /v1/agents`, `POST /v1/agents`, `PUT /v1/agents/{name}/egress`
//! and `PUT /v1/agents/{name}/secrets`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use gatehouse_api::app::agents as app;
use gatehouse_api::error::ApiError;
use gatehouse_api::request_id::RequestId;
use gatehouse_api::state::AppState;

use super::list_field;
use crate::csrf_form::CsrfForm;
use crate::human::{see_other, Human};
use crate::layout::{csrf_field, error_box, error_page, frame, notice};

fn shown(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn render(
    st: &AppState,
    who: &Human,
    status: StatusCode,
    done: Option<&str>,
    error: Option<&ApiError>,
) -> Response {
    let agents = match app::list(st, &who.principal).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(who), &e),
    };
    frame(
        status,
        "Agents",
        Some(who),
        "/agents",
        html! {
            p { "An agent's jobs reach only the hosts of its egress policy, and a job made by the agent itself is granted only secrets in its ceiling. Changing either from an agent's own credential waits for a person (" code { "policy.change" } ")." }
            (notice(done))
            (error_box(error))
            @if agents.is_empty() { p { "No agents yet." } }
            @for a in &agents {
                @let name = a["name"].as_str().unwrap_or_default();
                @let hosts = shown(&a["allow_hosts"]);
                @let secrets = shown(&a["secrets"]);
                section.card aria-labelledby={"agent-" (name)} {
                    h2 #{"agent-" (name)} { (name) }
                    dl.facts {
                        dt { "Egress policy" }
                        dd { @if a["allow_hosts"].is_null() { "none set (the job's own allow list applies)" }
                             @else if hosts.is_empty() { "no host at all" }
                             @else { (hosts.join(", ")) } }
                        dt { "Secret ceiling" }
                        dd { @if secrets.is_empty() { "none: the agent's own jobs may be granted no secret" }
                             @else { (secrets.join(", ")) } }
                    }
                    form method="post" action={"/agents/" (name) "/egress"} {
                        (csrf_field(who))
                        label for={"hosts-" (name)} { "Egress hosts for " (name) " (comma-separated: api.github.com, *.example.com, or *)" }
                        input id={"hosts-" (name)} type="text" name="allow_hosts" value=(hosts.join(", ")) autocomplete="off";
                        div.buttons {
                            button type="submit" { "Set egress policy" }
                            button.deny type="submit" name="lift" value="1" { "Lift the policy" }
                        }
                    }
                    form method="post" action={"/agents/" (name) "/secrets"} {
                        (csrf_field(who))
                        label for={"secrets-" (name)} { "Secret ceiling for " (name) " (comma-separated secret names)" }
                        input id={"secrets-" (name)} type="text" name="secrets" value=(secrets.join(", ")) autocomplete="off";
                        button type="submit" { "Set secret ceiling" }
                    }
                }
            }
            h2 { "Register an agent" }
            form method="post" action="/agents" {
                (csrf_field(who))
                label for="name" { "Agent name (a-z, 0-9, - and _)" }
                input #name type="text" name="name" required pattern="[a-z0-9][a-z0-9_\\-]{0,62}" autocomplete="off";
                button type="submit" { "Register" }
            }
        },
    )
}

#[derive(Deserialize, Default)]
pub struct Done {
    ok: Option<String>,
}

/// Human session with `jobs:read`.
pub async fn page(State(st): State<AppState>, who: Human, Query(q): Query<Done>) -> Response {
    let done = match q.ok.as_deref() {
        Some("created") => Some("the agent is registered; mint it a token with POST /v1/tokens."),
        Some("egress") => Some("the egress policy is set."),
        Some("secrets") => Some("the secret ceiling is set."),
        _ => None,
    };
    render(&st, &who, StatusCode::OK, done, None).await
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

/// Like `POST /v1/agents` (same function), CSRF token required.
pub async fn create(
    State(st): State<AppState>,
    request: RequestId,
    CsrfForm(who, body): CsrfForm<NameForm>,
) -> Response {
    match app::create(&st, &who.principal, &request, &body.name).await {
        Ok(()) => see_other("/agents?ok=created"),
        Err(e) => render(&st, &who, e.status(), None, Some(&e)).await,
    }
}

#[derive(Deserialize)]
pub struct EgressForm {
    #[serde(default)]
    allow_hosts: String,
    lift: Option<String>,
}

/// Like `PUT /v1/agents/{name}/egress` (same function), CSRF required.
pub async fn egress(
    State(st): State<AppState>,
    Path(name): Path<String>,
    request: RequestId,
    CsrfForm(who, body): CsrfForm<EgressForm>,
) -> Response {
    let hosts = body.lift.is_none().then(|| list_field(&body.allow_hosts));
    let headers = HeaderMap::new();
    match app::set_egress(&st, &who.principal, &headers, &request, name, hosts).await {
        Ok(_) => see_other("/agents?ok=egress"),
        Err(e) => render(&st, &who, e.status(), None, Some(&e)).await,
    }
}

#[derive(Deserialize)]
pub struct CeilingForm {
    #[serde(default)]
    secrets: String,
}

/// Like `PUT /v1/agents/{name}/secrets` (same function), CSRF required.
pub async fn secrets(
    State(st): State<AppState>,
    Path(name): Path<String>,
    request: RequestId,
    CsrfForm(who, body): CsrfForm<CeilingForm>,
) -> Response {
    let secrets = list_field(&body.secrets);
    let headers = HeaderMap::new();
    match app::set_secrets(&st, &who.principal, &headers, &request, name, secrets).await {
        Ok(_) => see_other("/agents?ok=secrets"),
        Err(e) => render(&st, &who, e.status(), None, Some(&e)).await,
    }
}
