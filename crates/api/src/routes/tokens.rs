//! Issuing, listing and revoking tokens (the kill switch).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::names::validate_agent_name;
use gatehouse_domain::token::Claims;
use gatehouse_domain::{CredentialClass, Email, Principal, Scope, ScopeSet};
use gatehouse_store::IssuedToken;

use crate::app::tokens as app;
use crate::error::{ApiError, ApiResult};
use crate::gate::{gate, GatedCall};
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

/// Scope `tokens:write`. Agent tokens (human sessions only) name a
/// registered agent; api tokens name their purpose and are a gated verb
/// (`token.mint_api`): any non-interactive caller gets `202` and waits for
/// a human. Scopes are at most the caller's; `approval:bypass` only on
/// api tokens, `credentials:read` never here.
pub async fn mint(
    principal: Principal,
    State(st): State<AppState>,
    headers: HeaderMap,
    request: RequestId,
    ApiJson(body): ApiJson<MintRequest>,
) -> ApiResult<Response> {
    let class = match CredentialClass::parse(&body.class) {
        Some(c @ (CredentialClass::Agent | CredentialClass::Api)) => c,
        _ => return Err(ApiError::bad_request("class must be \"agent\" or \"api\"")),
    };
    if class == CredentialClass::Agent {
        principal.require_human()?;
    }
    validate_agent_name(&body.subject).map_err(|e| ApiError::BadRequest {
        code: "invalid_subject",
        message: e.to_string(),
    })?;
    let scopes = ScopeSet::parse(&body.scope).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !scopes.is_subset_of(principal.scopes) {
        return Err(ApiError::forbidden(
            "insufficient_scope",
            "a token cannot carry scopes its issuer lacks",
        ));
    }
    if scopes.contains(Scope::CredentialsRead) {
        return Err(ApiError::bad_request(
            "credentials:read belongs to job tokens only",
        ));
    }
    if class == CredentialClass::Api {
        // What an agent's request produces lives under the agent
        // (`<agent>/<subject>`): revoking the agent (its subject) revokes
        // it too, on every replica, with no lookup (SPEC §7).
        let subject = match crate::gate::requester_of(&principal).agent {
            Some(agent) => crate::job_build::job_subject(&agent, &body.subject),
            None => body.subject,
        };
        if let Some(ttl) = body.ttl_seconds {
            st.auth
                .policy
                .lifetime(class, Some(ttl))
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        }
        let call = GatedCall::TokenMintApi {
            subject,
            scope: scopes,
            ttl_seconds: body.ttl_seconds,
        };
        return gate(&st, &principal, &headers, &request, call).await;
    }
    if scopes.contains(Scope::ApprovalBypass) {
        return Err(ApiError::bad_request(
            "approval:bypass is for api tokens only",
        ));
    }
    if !st
        .store
        .agent_exists(&principal.owner, &body.subject)
        .await?
    {
        return Err(ApiError::Unprocessable {
            code: "unknown_agent",
            message: format!(
                "no agent named {} is registered for this owner",
                body.subject
            ),
        });
    }
    let (token, claims) = st
        .auth
        .issue(
            class,
            &body.subject,
            &principal.owner,
            scopes,
            body.ttl_seconds,
        )
        .await?;
    record_issued(&st, &claims, &principal.subject, &request).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "jti": claims.jti,
            "expires_at": rfc3339(claims.exp),
            "class": claims.cls.as_str(),
            "subject": claims.sub,
            "scope": claims.scope,
        })),
    )
        .into_response())
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
