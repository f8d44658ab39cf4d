//! Approvals: requesters poll their own, humans list and decide.
//!
//! Another owner's approval answers like an unknown id (404): the answer
//! says nothing about what other tenants asked for.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use gatehouse_domain::Principal;

use crate::app::approvals::{self as app, requesting_jti, view};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only approvals in this state (empty: any).
    #[param(schema_with = crate::openapi::grammar::approval_status)]
    status: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// Humans: their owner's approvals (the operator: everyone's). Other
/// credentials: only the requests they made themselves.
pub async fn list(
    principal: Principal,
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let approvals = app::list(&st, &principal, q.status.as_deref(), q.limit).await?;
    let mut out = Vec::with_capacity(approvals.len());
    for a in &approvals {
        out.push(view(&st, a, requesting_jti(&principal, a)).await);
    }
    Ok(Json(out))
}

/// The requester (to poll its own), a human of the owner, or the operator.
pub async fn get(
    principal: Principal,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    app::shown(&st, &principal, &id).await.map(Json)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    #[schema(schema_with = crate::openapi::grammar::decision)]
    decision: String,
    /// Audited with the decision.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::grammar::reason)]
    reason: String,
}

/// A human session of the owner, or the operator; never the requester
/// (`app::approvals::decide`).
pub async fn decide(
    principal: Principal,
    State(st): State<AppState>,
    Path(id): Path<String>,
    request: RequestId,
    ApiJson(body): ApiJson<DecisionBody>,
) -> ApiResult<Json<Value>> {
    let fresh = app::decide(&st, &principal, &id, &body.decision, &body.reason, &request).await?;
    Ok(Json(view(&st, &fresh, None).await))
}
