//! Human sessions: claiming the installation with the bootstrap code,
//! signing in with a one-time login code, signing out (SPEC §1). The
//! session is a token like any other, also set as the
//! `gatehouse_session` cookie.

use std::net::IpAddr;

use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::codes::code_matches;
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::{Email, Principal, Role};
use gatehouse_store::{BootstrapState, NewOwner, StoreError};

use crate::auth::{session_cookie, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult};
use crate::request_id::RequestId;
use crate::state::AppState;

/// A freshly issued session.
pub struct Session {
    pub email: Email,
    pub token: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

impl Session {
    /// The `Set-Cookie` value: `HttpOnly; SameSite=Strict; Path=/`, and
    /// `Secure` unless the listener is on loopback.
    pub fn cookie(&self, st: &AppState) -> String {
        session_cookie(
            &self.token,
            self.expires_at - self.issued_at,
            st.config.cookies_secure(),
        )
    }
}

/// The `Set-Cookie` value that makes a browser forget its session.
pub fn cleared_cookie(st: &AppState) -> String {
    format!(
        "{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if st.config.cookies_secure() {
            "; Secure"
        } else {
            ""
        }
    )
}

/// Issues and records a session for `email`.
pub async fn issue(
    st: &AppState,
    email: &Email,
    role: Role,
    request: &RequestId,
) -> ApiResult<Session> {
    let (token, claims) = st.auth.issue_session(email, role).await?;
    crate::routes::tokens::record_issued(st, &claims, email.as_str(), request).await?;
    Ok(Session {
        email: email.clone(),
        token,
        issued_at: claims.iat,
        expires_at: claims.exp,
    })
}

/// Public. A session for the first claimant, who becomes the operator;
/// 403 wrong code; 409 already claimed; 429 after more than 5 wrong codes
/// a minute from one address.
pub async fn claim(
    st: &AppState,
    ip: IpAddr,
    request: &RequestId,
    code: &str,
    email: &str,
) -> ApiResult<Session> {
    let now = st.now();
    if let Some(retry_after) = st.claim_limiter.blocked_for(ip, now) {
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let email = Email::parse(email).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let digest = match st.store.bootstrap_state().await? {
        BootstrapState::Claimed { .. } => {
            return Err(ApiError::Conflict(
                "this installation is already claimed".into(),
            ))
        }
        BootstrapState::Unclaimed {
            code_digest: Some(d),
        } => d,
        BootstrapState::Unclaimed { code_digest: None } => {
            return Err(ApiError::Conflict(
                "no bootstrap code is set; restart the server to create one".into(),
            ))
        }
    };
    if !code_matches(code, &digest) {
        st.claim_limiter.record_failure(ip, now);
        let mut e = AuditEvent::new("bootstrap.claim", "denied:wrong_code");
        e.actor = ip.to_string();
        e.request_id = request.0.clone();
        st.store.append_audit(e, now).await?;
        return Err(ApiError::forbidden(
            "wrong_code",
            "the bootstrap code is not valid",
        ));
    }
    let operator = NewOwner {
        email: email.clone(),
        role: Role::Operator,
        data_key: st.master.wrap_data_key(&email, &SymmetricKey::generate()),
        created_at: now,
    };
    let mut event = AuditEvent::new("bootstrap.claim", "ok");
    event.actor = email.as_str().into();
    event.cls = "session".into();
    event.owner = email.as_str().into();
    event.target = email.as_str().into();
    event.request_id = request.0.clone();
    match st.store.claim_bootstrap(&operator, event, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(
                "this installation is already claimed".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = std::fs::remove_file(&st.bootstrap_file) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("could not remove the used bootstrap code file: {e}");
        }
    }
    tracing::info!(operator = %email, "installation claimed");
    issue(st, &email, Role::Operator, request).await
}

/// Public. A session for a valid, unused, unexpired login code; 401
/// otherwise, 429 after more than 5 failures a minute from one address.
pub async fn login(
    st: &AppState,
    ip: IpAddr,
    request: &RequestId,
    email: &str,
    code: &str,
) -> ApiResult<Session> {
    let now = st.now();
    if let Some(retry_after) = st.login_limiter.blocked_for(ip, now) {
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let email = Email::parse(email).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let refuse = |reason: &str| {
        let mut e = AuditEvent::new("owner.login", &format!("denied:{reason}"));
        e.actor = ip.to_string();
        e.owner = email.as_str().into();
        e.target = email.as_str().into();
        e.request_id = request.0.clone();
        e
    };
    let stored = st.store.login_code(&email, now).await?;
    let matched = stored.filter(|d| code_matches(code, d));
    let Some(digest) = matched else {
        st.login_limiter.record_failure(ip, now);
        st.store
            .append_audit(refuse("wrong_or_expired_code"), now)
            .await?;
        return Err(ApiError::Unauthenticated);
    };
    let mut event = AuditEvent::new("owner.login", "ok");
    event.actor = email.as_str().into();
    event.cls = "session".into();
    event.owner = email.as_str().into();
    event.target = email.as_str().into();
    event.request_id = request.0.clone();
    if !st
        .store
        .consume_login_code(&email, &digest, event, now)
        .await?
    {
        // Someone used the same code a moment earlier.
        st.store
            .append_audit(refuse("code_already_used"), now)
            .await?;
        return Err(ApiError::Unauthenticated);
    }
    let role = st
        .store
        .owner(&email)
        .await?
        .map(|o| o.role)
        .ok_or_else(|| ApiError::forbidden("owner_unknown", "this owner no longer exists"))?;
    issue(st, &email, role, request).await
}

/// Signing out: the session's own token is revoked by its jti (the kill
/// switch, effective on every replica), not merely forgotten by the
/// browser. A session vouched for by a trusted proxy has no token to
/// revoke: that is the proxy's to end.
pub async fn logout(st: &AppState, principal: &Principal, request: &RequestId) -> ApiResult<()> {
    let Some(jti) = principal.jti.clone() else {
        return Ok(());
    };
    crate::app::tokens::revoke(
        st,
        principal,
        request,
        crate::app::tokens::RevokeTarget::Jti(jti),
    )
    .await
    .map(|_| ())
}
