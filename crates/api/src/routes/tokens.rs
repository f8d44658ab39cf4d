//! Issuing, listing and revoking tokens (the kill switch).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::token::Claims;
use gatehouse_domain::{Email, Principal};
use gatehouse_store::IssuedToken;

use crate::app::tokens as app;
use crate::error::{ApiError, ApiResult};
use crate::gate::GateOutcome;
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::AppState;

/// The row and the `token.issue` audit record of a freshly signed token
/// (never its value).
pub fn issued_record(
    claims: &Claims,
    actor: &str,
    request_id: &str,
) -> ApiResult<(IssuedToken, AuditEvent)> {
    let owner = Email::parse(&claims.owner).map_err(ApiError::internal)?;
    let event = AuditEvent {
        actor: actor.into(),
        cls: claims.cls.as_str().into(),
        owner: owner.as_str().into(),
        action: "token.issue".into(),
        target: format!("{} {} {}", claims.cls, claims.sub, claims.jti),
        outcome: "ok".into(),
        request_id: request_id.into(),
    };
    let issued = IssuedToken {
        jti: claims.jti.clone(),
        owner,
        subject: claims.sub.clone(),
        class: claims.cls,
        scope: claims.scope.clone(),
        iat: claims.iat,
        exp: claims.exp,
    };
    Ok((issued, event))
}

/// Records a freshly signed token with its audit record.
pub async fn record_issued(
    st: &AppState,
    claims: &Claims,
    actor: &str,
    request: &RequestId,
) -> ApiResult<()> {
    let (issued, event) = issued_record(claims, actor, &request.0)?;
    st.store
        .record_issued_token(&issued, event, st.now())
        .await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    class: String,
    subject: String,
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    ttl_seconds: Option<i64>,
    #[serde(default)]
    scope: String,
}

/// Its schema ties the class to the scopes and lifetime it may carry,
/// which a derived per-field schema cannot say.
impl utoipa::PartialSchema for MintRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::grammar::mint_request()
    }
}

impl utoipa::ToSchema for MintRequest {}

/// Scope `tokens:write` (`app::tokens::mint`): agent tokens from human
/// sessions; api tokens are the gated verb `token.mint_api` (`202` for
/// any non-interactive caller).
pub async fn mint(
    principal: Principal,
    State(st): State<AppState>,
    headers: HeaderMap,
    request: RequestId,
    ApiJson(body): ApiJson<MintRequest>,
) -> ApiResult<GateOutcome> {
    let input = app::MintInput {
        class: body.class,
        subject: body.subject,
        ttl_seconds: body.ttl_seconds,
        scope: body.scope,
    };
    app::mint(&st, &principal, &headers, &request, input).await
}

/// Scope `tokens:write`: the owner's unexpired tokens, never their values.
pub async fn list(principal: Principal, State(st): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let tokens = app::list(&st, &principal).await?;
    Ok(Json(
        tokens
            .iter()
            .map(|row| {
                let t = &row.token;
                json!({
                    "jti": t.jti,
                    "subject": t.subject,
                    "class": t.class.as_str(),
                    "scope": t.scope,
                    "iat": t.iat,
                    "exp": t.exp,
                    "revoked": row.revoked,
                })
            })
            .collect(),
    ))
}

/// Exactly one of the three.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    jti: Option<String>,
    subject: Option<String>,
    owner: Option<String>,
}

/// One of three one-field objects: "exactly one of" as a schema says it.
impl utoipa::PartialSchema for RevokeRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::grammar::revoke_request()
    }
}

impl utoipa::ToSchema for RevokeRequest {}

/// Scope `tokens:write` (`app::tokens::revoke`): exactly one of jti,
/// subject, owner.
pub async fn revoke(
    principal: Principal,
    State(st): State<AppState>,
    request: RequestId,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> ApiResult<Json<Value>> {
    let target = match (body.jti, body.subject, body.owner) {
        (Some(jti), None, None) => app::RevokeTarget::Jti(jti),
        (None, Some(subject), None) => app::RevokeTarget::Subject(subject),
        (None, None, Some(owner)) => app::RevokeTarget::Owner(owner),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of jti, subject or owner",
            ))
        }
    };
    Ok(Json(
        match app::revoke(&st, &principal, &request, target).await? {
            app::Revoked::Count(n) => json!({ "revoked": n }),
            // The store may have raised the watermark past `now` to cover a
            // token issued within this second (`token::watermark`).
            app::Revoked::AllBefore(ts) => json!({ "revoked": { "all-before": ts } }),
        },
    ))
}
