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
use gatehouse_store::{IssuedToken, RevocationKind};

use crate::error::{ApiError, ApiResult};
use crate::gate::{gate, GatedCall};
use crate::json::ApiJson;
use crate::keys::longest_token_lifetime;
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

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

/// The claims a listed token was issued with, for revocation checks.
fn claims_of(t: &IssuedToken) -> Claims {
    Claims {
        iss: String::new(),
        aud: String::new(),
        sub: t.subject.clone(),
        owner: t.owner.as_str().into(),
        cls: t.class,
        jti: t.jti.clone(),
        iat: t.iat,
        nbf: t.iat,
        exp: t.exp,
        scope: t.scope.clone(),
    }
}

/// Scope `tokens:write`: the owner's unexpired tokens, never their values.
pub async fn list(principal: Principal, State(st): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let tokens = st.store.issued_tokens(&principal.owner, st.now()).await?;
    let revocations = &st.auth.revocations;
    Ok(Json(
        tokens
            .iter()
            .map(|t| {
                json!({
                    "jti": t.jti,
                    "subject": t.subject,
                    "class": t.class.as_str(),
                    "scope": t.scope,
                    "iat": t.iat,
                    "exp": t.exp,
                    "revoked": revocations.covers(&claims_of(t)),
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

/// Scope `tokens:write`, within the caller's owner (the operator's human
/// session may revoke any owner's tokens). Exactly one of jti, subject,
/// owner. Effective on this node at once, on every replica within the
/// propagation bound.
pub async fn revoke(
    principal: Principal,
    State(st): State<AppState>,
    request: RequestId,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> ApiResult<Json<Value>> {
    let now = st.now();
    let may_cross_owners = principal.is_operator() && principal.is_human();
    let mut already = false;
    let (kind, expires_at, target) = match (body.jti, body.subject, body.owner) {
        (Some(jti), None, None) => {
            let token = st
                .store
                .issued_token(&jti)
                .await?
                .filter(|t| t.owner == principal.owner || may_cross_owners)
                .ok_or_else(|| ApiError::NotFound("no such token".into()))?;
            already = st.auth.revocations.covers(&claims_of(&token));
            (
                RevocationKind::Jti {
                    jti: token.jti.clone(),
                },
                token.exp,
                format!("jti {}", token.jti),
            )
        }
        (None, Some(subject), None) => {
            if subject.is_empty() || subject.chars().count() > 256 {
                return Err(ApiError::bad_request("subject must be 1 to 256 characters"));
            }
            let target = format!("subject {subject}");
            (
                RevocationKind::Subject {
                    owner: Some(principal.owner.clone()),
                    subject,
                },
                now + longest_token_lifetime(),
                target,
            )
        }
        (None, None, Some(owner)) => {
            let owner = Email::parse(&owner).map_err(|e| ApiError::bad_request(e.to_string()))?;
            if owner != principal.owner && !may_cross_owners {
                return Err(ApiError::forbidden(
                    "forbidden",
                    "only the operator may revoke another owner's tokens",
                ));
            }
            if st.store.owner(&owner).await?.is_none() {
                return Err(ApiError::NotFound("no such owner".into()));
            }
            let target = format!("owner {owner}");
            (
                RevocationKind::Owner { owner },
                now + longest_token_lifetime(),
                target,
            )
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of jti, subject or owner",
            ))
        }
    };
    let event = audit_event(&principal, "token.revoke", &target, "ok", &request);
    let is_jti = matches!(kind, RevocationKind::Jti { .. });
    let agent = match &kind {
        RevocationKind::Subject { subject, .. } => Some(subject.clone()),
        _ => None,
    };
    let revocation = st.store.revoke(kind, now, expires_at, event, now).await?;
    st.auth.revocations.apply(&revocation);
    if let Some(agent) = agent {
        // The agent's jobs die with it (their tokens through the
        // watermark); their placeholders go too.
        st.store
            .drop_agent_placeholders(&principal.owner, &agent)
            .await?;
    }
    Ok(Json(if is_jti {
        json!({ "revoked": if already { 0 } else { 1 } })
    } else {
        // The store may have raised the watermark past `now` to cover a
        // token issued within this second (`token::watermark`).
        json!({ "revoked": { "all-before": revocation.not_before } })
    }))
}
