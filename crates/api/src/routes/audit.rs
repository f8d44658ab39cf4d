//! Reading the audit log (`app::audit::page`).

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;

use gatehouse_domain::audit::AuditRecord;
use gatehouse_domain::Principal;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    since_seq: Option<i64>,
    limit: Option<i64>,
    /// Only records whose action starts with this.
    action: Option<String>,
}

/// Scope `audit:read` (every human session holds it).
pub async fn list(
    principal: Principal,
    State(st): State<AppState>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    let Query(page) =
        page.map_err(|e| ApiError::bad_request(format!("bad query: {}", e.body_text())))?;
    let found = crate::app::audit::page(
        &st,
        &principal,
        page.since_seq,
        page.limit,
        page.action.as_deref().filter(|a| !a.is_empty()),
    )
    .await?;
    Ok(Json(found.records))
}
