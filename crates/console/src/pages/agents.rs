//! Agents and their ceilings: which hosts their jobs may reach (the
//! egress policy) and which secrets their own jobs may be granted (the
//! secret ceiling), as `GET /v1/agents` shows them (same function).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde_json::Value;

use gatehouse_api::app::agents as app;
use gatehouse_api::state::AppState;

use crate::human::Human;
use crate::layout::{error_page, frame};

fn list(v: &Value, none: &str) -> String {
    match v.as_array() {
        Some(items) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        Some(_) => none.to_string(),
        None => none.to_string(),
    }
}

/// Human session with `jobs:read`.
pub async fn page(State(st): State<AppState>, who: Human) -> Response {
    let agents = match app::list(&st, &who.principal).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(&who), &e),
    };
    frame(
        StatusCode::OK,
        "Agents",
        Some(&who),
        "/agents",
        html! {
            p { "An agent reaches only the hosts of its egress policy and is granted only the secrets in its ceiling. Changing either from an agent's own credential waits for a person (" code { "policy.change" } ")." }
            table {
                caption { "Your agents" }
                thead { tr { th scope="col" { "Agent" } th scope="col" { "Egress policy (hosts)" } th scope="col" { "Secret ceiling" } } }
                tbody {
                    @if agents.is_empty() { tr { td colspan="3" { "No agents yet (" code { "POST /v1/agents" } ")." } } }
                    @for a in &agents {
                        tr {
                            td { strong { (a["name"].as_str().unwrap_or_default()) } }
                            td { @if a["allow_hosts"].is_null() { "no agent policy (the job's own list applies)" }
                                 @else { (list(&a["allow_hosts"], "none: no host")) } }
                            td { (list(&a["secrets"], "none: no secret may be granted by the agent")) }
                        }
                    }
                }
            }
        },
    )
}
