//! Reading the audit log (`app::audit::page`).

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use gatehouse_domain::audit::AuditRecord;
use gatehouse_domain::Principal;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Records after this sequence number.
    #[param(minimum = 0)]
    since_seq: Option<i64>,
    #[param(minimum = 1, maximum = 1000)]
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
