//! Owners: added by the operator, signing in with a one-time login code.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use utoipa::ToSchema;

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::codes::{code_digest, human_code};
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::{Email, Principal, Role};
use gatehouse_store::{NewOwner, RevocationKind, StoreError};

use crate::auth::peer_ip_of;
use crate::error::{ApiError, ApiResult};
use crate::gate::{gate, GateOutcome, GatedCall};
use crate::json::ApiJson;
use crate::keys::longest_token_lifetime;
use crate::request_id::RequestId;
use crate::routes::bootstrap::session_response;
use crate::state::{audit_event, AppState};

const LOGIN_CODE_TTL: i64 = 24 * 3600;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOwnerRequest {
    #[schema(schema_with = crate::openapi::grammar::email)]
    email: String,
}

/// Operator session only (the route's rule). 201 with a one-time login
/// code (24 h) for a new owner; an existing owner is `409`: asking again
/// never hands the operator a way into someone's account (that is
/// [`recover`], which the owner sees).
pub async fn create(
    principal: Principal,
    State(st): State<AppState>,
    request: RequestId,
    ApiJson(body): ApiJson<NewOwnerRequest>,
) -> ApiResult<Response> {
    let email = Email::parse(&body.email).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let now = st.now();
    let owner = NewOwner {
        email: email.clone(),
        role: Role::Owner,
        data_key: st.master.wrap_data_key(&email, &SymmetricKey::generate()),
        created_at: now,
    };
    let event = audit_event(&principal, "owner.create", email.as_str(), "ok", &request);
    match st.store.create_owner(&owner, event, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(format!(
                "{email} is already an owner; POST /v1/owners/{email}/recover revokes their tokens and issues a new code"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    let code = issue_login_code(&st, &email, now).await?;
    let event = audit_event(
        &principal,
        "owner.login_code",
        email.as_str(),
        "issued",
        &request,
    );
    st.store.append_audit(event, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "email": email.as_str(), "login_code": code })),
    )
        .into_response())
}

async fn issue_login_code(st: &AppState, email: &Email, now: UnixTime) -> ApiResult<String> {
    let code = human_code();
    st.store
        .set_login_code(email, &code_digest(&code), now + LOGIN_CODE_TTL)
        .await?;
    Ok(code)
}

/// Operator session only (the route's rule). Account recovery: every
/// token of the owner is revoked (sessions included, one owner
/// watermark), then a new one-time login code (24 h) is issued and
/// returned. Audited under that owner, so they see it in their own
/// `GET /v1/audit`. An unknown owner is `404`.
pub async fn recover(
    principal: Principal,
    State(st): State<AppState>,
    Path(email): Path<String>,
    request: RequestId,
) -> ApiResult<Json<Value>> {
    let email = Email::parse(&email).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if st.store.owner(&email).await?.is_none() {
        return Err(ApiError::NotFound(format!("no owner {email}")));
    }
    let now = st.now();
    let mut event = audit_event(
        &principal,
        "owner.recover",
        email.as_str(),
        "ok: every token revoked, login code issued",
        &request,
    );
    event.owner = email.as_str().into();
    // Revoked first: if issuing the code fails, the owner is locked out
    // until the operator asks again, never left with live old tokens.
    let revocation = st
        .store
        .revoke(
            RevocationKind::Owner {
                owner: email.clone(),
            },
            now,
            now + longest_token_lifetime(),
            event,
            now,
        )
        .await?;
    st.auth.revocations.apply(&revocation);
    let code = issue_login_code(&st, &email, now).await?;
    Ok(Json(json!({ "email": email.as_str(), "login_code": code })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(schema_with = crate::openapi::grammar::email)]
    email: String,
    /// The one-time login code.
    code: String,
}

/// Public. 200 with a session for a valid, unused, unexpired code
/// (`app::sessions::login`).
pub async fn login(
    State(st): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    request: RequestId,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let session =
        crate::app::sessions::login(&st, peer_ip_of(&peer), &request, &body.email, &body.code)
            .await?;
    Ok(session_response(&st, &session, StatusCode::OK))
}

/// The operator's account, any class but a job (the route's rule; a
/// non-interactive operator credential is held for approval:
/// `owner.deprovision` is gated). Removes the owner with their
/// data key, secrets, jobs, agents and hooks, and revokes every token of
/// theirs; the audit log keeps their history. The operator cannot
/// deprovision themself.
pub async fn deprovision(
    principal: Principal,
    State(st): State<AppState>,
    Path(email): Path<String>,
    headers: HeaderMap,
    request: RequestId,
) -> ApiResult<GateOutcome> {
    let email = Email::parse(&email).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if email == principal.owner {
        return Err(ApiError::Conflict(
            "the operator cannot deprovision themself".into(),
        ));
    }
    if st.store.owner(&email).await?.is_none() {
        return Err(ApiError::NotFound(format!("no owner {email}")));
    }
    gate(
        &st,
        &principal,
        &headers,
        &request,
        GatedCall::OwnerDeprovision { email },
    )
    .await
}
