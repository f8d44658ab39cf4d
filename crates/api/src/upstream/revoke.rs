//! `upstream.revoke`: the owner takes back the credential Gatehouse holds
//! for an upstream. Every token Gatehouse minted and still holds is
//! revoked at the upstream (the current one last, with itself), then the
//! store forgets them and the secret `upstream.<name>` in one transaction
//! (`GatedAction::RetireUpstream`); the owner may bootstrap again.
//!
//! A gated verb: a non-interactive caller waits for a human, and the
//! upstream calls run only when the request runs.

use gatehouse_domain::Email;
use gatehouse_store::UpstreamTokenState;

use super::driver::DriverError;
use super::{open_token, same_person};
use crate::error::{ApiError, ApiResult};
use crate::state::Inner;

/// What was taken back: the current token's id (the store retires the
/// credential only if it is still the current one) and every id revoked.
pub struct TakenBack {
    pub current: String,
    pub revoked: Vec<String>,
}

/// Revokes at the upstream every token Gatehouse holds for `name`.
/// Nothing is forgotten here: if a call fails, the credential stays as it
/// was (with whatever was revoked already gone for good) and the caller
/// gets the reason.
pub async fn take_back(st: &Inner, owner: &Email, name: &str) -> ApiResult<TakenBack> {
    let upstream = st
        .upstreams
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("no upstream named {name}")))?;
    if !same_person(owner.as_str(), upstream.config.owner.as_str()) {
        return Err(ApiError::forbidden(
            "not_upstream_owner",
            "only the upstream's owner may revoke its credential",
        ));
    }
    // Not while this process rotates it.
    let _local = upstream.local.lock().await;
    let current = st
        .store
        .upstream_state(name)
        .await?
        .and_then(|s| s.current)
        .ok_or_else(|| ApiError::Conflict(format!("{name} has no credential to revoke")))?;
    let mut revoked = Vec::new();
    if current.expires_at > st.now() {
        let auth = open_token(st, owner, name, &current).await?;
        let others: Vec<String> = st
            .store
            .upstream_open_tokens(name)
            .await?
            .into_iter()
            .filter(|t| {
                t.token_id != current.token_id
                    && matches!(
                        t.state,
                        UpstreamTokenState::Pending | UpstreamTokenState::PendingRevoke
                    )
            })
            .map(|t| t.token_id)
            .collect();
        for id in others.iter().chain(std::iter::once(&current.token_id)) {
            match upstream.driver.revoke(&auth, id).await {
                Ok(()) | Err(DriverError::NotFound) => revoked.push(id.clone()),
                Err(e) => {
                    return Err(ApiError::Unprocessable {
                        code: "upstream_failed",
                        message: format!("revoking token {id} at the upstream failed: {e}"),
                    })
                }
            }
        }
    }
    Ok(TakenBack {
        current: current.token_id,
        revoked,
    })
}
