//! The one-shot exchange behind `PUT /v1/upstreams/{name}/credential`.
//!
//! Order of checks: only a human session reaches this at all (the route
//! table's rule, enforced by the `Principal` extractor). A caller who is
//! not the upstream's owner is `403`; then the single-shot guard: a
//! credential still active and unexpired is `409` (allowed again once
//! expired), before the body is looked at, so a second paste while one is
//! active never reaches the upstream. Then an empty or malformed token is
//! `400`; then the pasted token is checked by the upstream's whoami with
//! that token alone — never a fallback to a token Gatehouse holds — and an
//! identity other than the owner is `403 identity_mismatch`. Only then is
//! a short-lived token minted, verified, installed (with the secret) in
//! one transaction, and the pasted token revoked. Every refusal is audited
//! with its reason, never the token.

use gatehouse_domain::{Principal, SecretBytes};
use gatehouse_store::{StoreError, UpstreamInstall, UpstreamTokenState};
use serde_json::Value;

use super::driver::DriverError;
use super::{same_person, seal_token, secret_record, status, system_event, Upstream};
use crate::error::{ApiError, ApiResult};
use crate::request_id::RequestId;
use crate::state::{audit_event, Inner};

async fn refuse(
    st: &Inner,
    principal: &Principal,
    upstream: &Upstream,
    request: &RequestId,
    reason: &str,
    error: ApiError,
) -> ApiError {
    let mut event = audit_event(
        principal,
        "upstream.bootstrap",
        &upstream.config.name,
        &format!("refused: {reason}"),
        request,
    );
    // Filed under the upstream's owner too when the caller is someone
    // else, so the owner sees attempts on their upstream.
    event.owner = upstream.config.owner.as_str().into();
    if let Err(e) = st.store.append_audit(event, st.now()).await {
        tracing::warn!("audit append failed: {e}");
    }
    error
}

fn driver_refusal(e: &DriverError) -> (&'static str, ApiError) {
    match e {
        DriverError::Refused(_) => (
            "the upstream refused the token",
            ApiError::BadRequest {
                code: "invalid_token",
                message: "the upstream refused this token".into(),
            },
        ),
        DriverError::Upstream(_) | DriverError::NotFound => (
            "unexpected upstream answer",
            ApiError::BadRequest {
                code: "invalid_token",
                message: "the upstream did not confirm this token".into(),
            },
        ),
        DriverError::Unreachable(_) => (
            "upstream unreachable",
            ApiError::Unavailable("the upstream did not answer".into()),
        ),
    }
}

/// Runs the exchange; answers the upstream's status.
pub async fn bootstrap(
    st: &Inner,
    principal: &Principal,
    upstream: &Upstream,
    token: SecretBytes,
    request: &RequestId,
) -> ApiResult<Value> {
    let c = &upstream.config;
    if !same_person(principal.owner.as_str(), c.owner.as_str()) {
        let e = ApiError::forbidden(
            "not_upstream_owner",
            "only the upstream's owner may set its credential",
        );
        return Err(refuse(
            st,
            principal,
            upstream,
            request,
            "not the upstream's owner",
            e,
        )
        .await);
    }
    // One exchange at a time per upstream in this process (the store's
    // install refuses a second one across replicas); held before the
    // single-shot check so a paste racing an exchange waits and then
    // sees it active.
    let _local = upstream.local.lock().await;
    // The single-shot guard comes before anything reads the pasted token:
    // while a credential is active, a paste never reaches the upstream.
    let active = st
        .store
        .upstream_state(&c.name)
        .await?
        .and_then(|s| s.current)
        .is_some_and(|t| t.expires_at > st.now());
    if active {
        let e = ApiError::Conflict(
            "a credential is active; it can be set again once it has expired".into(),
        );
        return Err(refuse(
            st,
            principal,
            upstream,
            request,
            "a credential is active",
            e,
        )
        .await);
    }
    let pasted = SecretBytes::new(
        token
            .expose_str()
            .map(|t| t.trim().as_bytes().to_vec())
            .unwrap_or_default(),
    );
    if pasted.is_empty()
        || pasted.len() > 4096
        || pasted
            .expose()
            .iter()
            .any(|b| b.is_ascii_control() || *b == b' ')
    {
        let e = ApiError::BadRequest {
            code: "invalid_token",
            message: "token must be non-empty text without spaces, at most 4096 bytes".into(),
        };
        return Err(refuse(
            st,
            principal,
            upstream,
            request,
            "empty or malformed token",
            e,
        )
        .await);
    }

    let identity = match upstream.driver.whoami(&pasted).await {
        Ok(i) => i,
        Err(e) => {
            let (reason, error) = driver_refusal(&e);
            return Err(refuse(st, principal, upstream, request, reason, error).await);
        }
    };
    if !same_person(&identity.user, c.owner.as_str()) {
        let e = ApiError::forbidden(
            "identity_mismatch",
            "the token belongs to someone other than the upstream's owner",
        );
        return Err(refuse(st, principal, upstream, request, "identity_mismatch", e).await);
    }
    let pasted_id = match identity.token_id {
        Some(id) => Some(id),
        None => upstream.driver.own_token_id(&pasted).await.unwrap_or(None),
    };

    let minted = match upstream.driver.mint(&pasted, c.lifetime_seconds).await {
        Ok(m) => m,
        Err(e) => {
            let (reason, error) = driver_refusal(&e);
            return Err(refuse(
                st,
                principal,
                upstream,
                request,
                &format!("mint failed: {reason}"),
                error,
            )
            .await);
        }
    };
    let now = st.now();
    let target = format!("{}:{}", c.name, minted.token_id);
    let mint_event = system_event(&c.owner, "upstream.mint", &target, "ok");
    st.store.append_audit(mint_event, now).await?;
    // The new token must work on its own before anything depends on it.
    let verified = upstream.driver.whoami(&minted.value).await;
    if !verified
        .as_ref()
        .is_ok_and(|i| same_person(&i.user, c.owner.as_str()))
    {
        let _ = upstream
            .driver
            .revoke(&minted.value, &minted.token_id)
            .await;
        let e = ApiError::Unavailable("the upstream did not confirm the token it minted".into());
        return Err(refuse(
            st,
            principal,
            upstream,
            request,
            "minted token not confirmed",
            e,
        )
        .await);
    }

    let expires_at = minted.expires_at.unwrap_or(now + c.lifetime_seconds);
    let install = UpstreamInstall {
        name: c.name.clone(),
        owner: c.owner.clone(),
        current: seal_token(
            st,
            &c.owner,
            &c.name,
            &minted.token_id,
            &minted.value,
            expires_at,
        )
        .await?,
        pasted_id: pasted_id.clone(),
        secret: secret_record(st, c, &minted.value, now).await?,
    };
    let outcome = match &pasted_id {
        Some(id) => format!("ok: pasted token {id} exchanged for {}", minted.token_id),
        None => format!(
            "ok: exchanged for {}; the pasted token's id could not be determined, it was not revoked",
            minted.token_id
        ),
    };
    let event = audit_event(principal, "upstream.bootstrap", &c.name, &outcome, request);
    match st.store.upstream_install(&install, event, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            let _ = upstream
                .driver
                .revoke(&minted.value, &minted.token_id)
                .await;
            let e = ApiError::Conflict(
                "a credential is active; it can be set again once it has expired".into(),
            );
            return Err(refuse(
                st,
                principal,
                upstream,
                request,
                "a credential is active",
                e,
            )
            .await);
        }
        Err(e) => {
            let _ = upstream
                .driver
                .revoke(&minted.value, &minted.token_id)
                .await;
            return Err(e.into());
        }
    }

    // The pasted token has done its job: revoke it now, with the new one.
    if let Some(id) = pasted_id {
        let target = format!("{}:{id}", c.name);
        let now = st.now();
        match upstream.driver.revoke(&minted.value, &id).await {
            Ok(()) | Err(DriverError::NotFound) => {
                let event = system_event(&c.owner, "upstream.revoke", &target, "ok");
                st.store
                    .upstream_revoke_done(&c.name, &id, UpstreamTokenState::Revoked, event, now)
                    .await?;
            }
            Err(e) => {
                let error = e.to_string();
                let event = system_event(
                    &c.owner,
                    "upstream.revoke",
                    &target,
                    &format!("failed: {error}"),
                );
                st.store
                    .upstream_revoke_failed(
                        &c.name,
                        &id,
                        now + super::rotation::backoff(0),
                        &error,
                        event,
                        now,
                    )
                    .await?;
            }
        }
    }
    status(st, upstream).await
}
