//! Claiming the installation with the one-time bootstrap code.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::codes::code_matches;
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::{Email, Role};
use gatehouse_store::{BootstrapState, NewOwner, StoreError};

use crate::auth::{peer_ip_of, session_cookie};
use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The bootstrap code `serve` printed (or `GATEHOUSE_BOOTSTRAP_CODE`).
    code: String,
    #[schema(schema_with = crate::openapi::grammar::email)]
    email: String,
}

/// Public. 201 with a session; 403 wrong code; 409 already claimed;
/// 429 after more than 5 wrong codes a minute from one address.
pub async fn claim(
    State(st): State<AppState>,
    peer: axum::extract::ConnectInfo<std::net::SocketAddr>,
    request: RequestId,
    ApiJson(body): ApiJson<ClaimRequest>,
) -> ApiResult<Response> {
    let ip = peer_ip_of(&peer);
    let now = st.now();
    if let Some(retry_after) = st.claim_limiter.blocked_for(ip, now) {
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let email = Email::parse(&body.email).map_err(|e| ApiError::bad_request(e.to_string()))?;
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
    if !code_matches(&body.code, &digest) {
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
    session_response(&st, &email, Role::Operator, StatusCode::CREATED, &request).await
}

/// `{"email","token","expires_at"}` plus the session cookie.
pub async fn session_response(
    st: &AppState,
    email: &Email,
    role: Role,
    status: StatusCode,
    request: &RequestId,
) -> ApiResult<Response> {
    let (token, claims) = st.auth.issue_session(email, role).await?;
    crate::routes::tokens::record_issued(st, &claims, email.as_str(), request).await?;
    let cookie = session_cookie(&token, claims.exp - claims.iat, st.config.cookies_secure());
    let body =
        json!({ "email": email.as_str(), "token": token, "expires_at": rfc3339(claims.exp) });
    Ok((status, [(header::SET_COOKIE, cookie)], Json(body)).into_response())
}
