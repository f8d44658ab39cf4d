//! Listing and revoking tokens: the kill switch (SPEC §3).

use axum::http::{HeaderMap, StatusCode};
use serde_json::json;

use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::names::validate_agent_name;
use gatehouse_domain::token::Claims;
use gatehouse_domain::{CredentialClass, Email, Principal, Scope, ScopeSet};
use gatehouse_store::{IssuedToken, RevocationKind};

use crate::error::{ApiError, ApiResult};
use crate::gate::{gate, GateOutcome, GatedCall};
use crate::keys::longest_token_lifetime;
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

/// What `POST /v1/tokens` asks for.
pub struct MintInput {
    /// `agent` or `api`.
    pub class: String,
    pub subject: String,
    pub ttl_seconds: Option<i64>,
    /// Space-separated.
    pub scope: String,
}

/// Scope `tokens:write`. Agent tokens (human sessions only) name a
/// registered agent; api tokens name their purpose and are a gated verb
/// (`token.mint_api`): any non-interactive caller gets `202` and waits for
/// a human. Scopes are at most the caller's; `approval:bypass` only on
/// api tokens, `credentials:read` never here.
pub async fn mint(
    st: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    request: &RequestId,
    body: MintInput,
) -> ApiResult<GateOutcome> {
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
        let subject = match crate::gate::requester_of(principal).agent {
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
        return gate(st, principal, headers, request, call).await;
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
    crate::routes::tokens::record_issued(st, &claims, &principal.subject, request).await?;
    Ok(GateOutcome::Ran {
        status: StatusCode::CREATED,
        body: json!({
            "token": token,
            "jti": claims.jti,
            "expires_at": rfc3339(claims.exp),
            "class": claims.cls.as_str(),
            "subject": claims.sub,
            "scope": claims.scope,
        }),
    })
}

/// A live token of the owner (never its value), and whether the
/// revocation view already covers it.
pub struct TokenRow {
    pub token: IssuedToken,
    pub revoked: bool,
}

/// What to revoke.
pub enum RevokeTarget {
    Jti(String),
    /// Every token of an agent or job (and the jobs under an agent).
    Subject(String),
    /// Every token of an owner, sessions included.
    Owner(String),
}

/// What a revocation did.
pub enum Revoked {
    /// One token by jti: 1, or 0 when it was revoked already.
    Count(u32),
    /// A watermark: every token of the scope issued up to this time.
    AllBefore(i64),
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

/// Scope `tokens:write`: the owner's unexpired tokens.
pub async fn list(st: &AppState, principal: &Principal) -> ApiResult<Vec<TokenRow>> {
    let tokens = st.store.issued_tokens(&principal.owner, st.now()).await?;
    let revocations = &st.auth.revocations;
    Ok(tokens
        .into_iter()
        .map(|t| TokenRow {
            revoked: revocations.covers(&claims_of(&t)),
            token: t,
        })
        .collect())
}

/// Scope `tokens:write`, within the caller's owner (the operator's human
/// session may revoke any owner's tokens). Effective on this node at
/// once, on every replica within the propagation bound.
pub async fn revoke(
    st: &AppState,
    principal: &Principal,
    request: &RequestId,
    target: RevokeTarget,
) -> ApiResult<Revoked> {
    let now = st.now();
    let may_cross_owners = principal.is_operator() && principal.is_human();
    let mut already = false;
    let (kind, expires_at, target) = match target {
        RevokeTarget::Jti(jti) => {
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
        RevokeTarget::Subject(subject) => {
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
        RevokeTarget::Owner(owner) => {
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
    };
    let event = audit_event(principal, "token.revoke", &target, "ok", request);
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
    Ok(if is_jti {
        Revoked::Count(if already { 0 } else { 1 })
    } else {
        Revoked::AllBefore(revocation.not_before)
    })
}
