//! Reading the audit log: owners their own records, the operator all.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use gatehouse_domain::audit::AuditRecord;
use gatehouse_domain::Principal;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Records after this sequence number.
    #[param(minimum = 0)]
    since_seq: Option<i64>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Scope `audit:read` (every human session holds it).
pub async fn list(
    principal: Principal,
    State(st): State<AppState>,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    let Query(page) =
        page.map_err(|e| ApiError::bad_request(format!("bad query: {}", e.body_text())))?;
    let since = page.since_seq.unwrap_or(0);
    let limit = page.limit.unwrap_or(DEFAULT_LIMIT);
    if since < 0 || !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "since_seq must be >= 0 and limit within 1..={MAX_LIMIT}"
        )));
    }
    let scope = if principal.is_operator() && principal.is_human() {
        None
    } else {
        Some(&principal.owner)
    };
    Ok(Json(st.store.audit_page(scope, since, limit).await?))
}
