//! Jobs (SPEC §5): removing every live job of the owner at once.

use axum::http::HeaderMap;

use gatehouse_domain::Principal;

use crate::error::ApiResult;
use crate::gate::{gate, GateOutcome, GatedCall};
use crate::request_id::RequestId;
use crate::state::AppState;

/// Scope `jobs:create`: deletes every live job of the owner, the gated
/// verb `job.delete_all` (`{"deleted": n}` when it runs).
pub async fn delete_all(
    st: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    request: &RequestId,
) -> ApiResult<GateOutcome> {
    gate(st, principal, headers, request, GatedCall::JobDeleteAll).await
}
