//! Upstream credentials (SPEC §8): the status of each upstream the caller
//! owns, and the owner's one-shot bootstrap. Only the upstream's owner
//! (compared case-insensitively) sees or sets anything; an unknown name
//! is `404`.

use serde_json::Value;

use gatehouse_domain::{Principal, SecretBytes};

use crate::error::{ApiError, ApiResult};
use crate::request_id::RequestId;
use crate::state::AppState;
use crate::upstream::{bootstrap, same_person, status as upstream_status, Upstream};

pub fn configured<'a>(st: &'a AppState, name: &str) -> ApiResult<&'a Upstream> {
    st.upstreams.get(name).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no upstream named {:?}",
            name.chars().take(64).collect::<String>()
        ))
    })
}

/// Any credential: the status of every upstream the caller owns.
pub async fn list(st: &AppState, principal: &Principal) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    for upstream in st.upstreams.iter() {
        if same_person(principal.owner.as_str(), upstream.config.owner.as_str()) {
            out.push(upstream_status(st, upstream).await?);
        }
    }
    Ok(out)
}

/// The upstream's owner, human session. Checks and their order: see
/// `upstream::bootstrap` (403 not the owner, 409 while active, 400
/// empty, 403 `identity_mismatch`).
pub async fn put_credential(
    st: &AppState,
    principal: &Principal,
    name: &str,
    token: SecretBytes,
    request: &RequestId,
) -> ApiResult<Value> {
    let upstream = configured(st, name)?;
    bootstrap::bootstrap(st, principal, upstream, token, request).await
}
