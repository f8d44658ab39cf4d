//! Jobs and their credentials.
//!
//! A job belongs to the owner of whoever created it, recorded at creation
//! and never re-derived. Its token resolves credentials of that owner
//! only; every way that can fail answers the same 403, so the answer says
//! nothing about which part was missing.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::grant_ceiling::GrantVerdict;
use gatehouse_domain::jobs::{validate_env_vars, Package};
use gatehouse_domain::names::normalise_host_pattern;
use gatehouse_domain::{CredentialClass, Email, Principal};
use gatehouse_store::{Grant, GrantMode, JobRecord};

use crate::auth::JobCredential;
use crate::error::{ApiError, ApiResult};
use crate::gate::{gate, GateOutcome, GatedCall, JobPlan};
use crate::job_build::{build, check_ceiling};
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// Reserved names (`PATH`, `LD_*`, ...) are refused with 422.
    #[schema(schema_with = crate::openapi::grammar::env_var)]
    env_var: String,
    #[schema(schema_with = crate::openapi::grammar::secret_name)]
    secret: String,
    /// `placeholder` (default) or `value`.
    #[schema(schema_with = crate::openapi::grammar::grant_mode, required = false)]
    mode: Option<String>,
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressRequest {
    /// Exact names, `*.suffix`, or `*`; empty: the granted secrets' hosts.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::grammar::allow_hosts)]
    allow_hosts: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    /// A registered agent of the caller's owner.
    #[schema(schema_with = crate::openapi::grammar::agent_name)]
    agent: String,
    #[serde(default)]
    #[schema(max_items = 20)]
    grants: Vec<GrantRequest>,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::grammar::packages)]
    packages: Vec<String>,
    #[schema(schema_with = crate::openapi::grammar::job_ttl, required = false)]
    #[serde(default, deserialize_with = "crate::json::whole_number")]
    ttl_seconds: Option<i64>,
    #[serde(default)]
    egress: EgressRequest,
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Unprocessable {
        code,
        message: message.into(),
    }
}

pub use crate::job_build::job_subject;

/// A human session, or an agent (or api) token with `jobs:create` acting
/// for itself. The job's owner is the caller's owner. A non-interactive
/// caller grants only secrets in the agent's ceiling, and a `value` grant
/// from one waits for a human (`job.grant_values`, 202).
pub async fn create(
    principal: Principal,
    State(st): State<AppState>,
    headers: HeaderMap,
    request: RequestId,
    ApiJson(body): ApiJson<CreateJob>,
) -> ApiResult<Response> {
    match principal.class {
        CredentialClass::Session | CredentialClass::Api => {}
        CredentialClass::Agent if principal.subject == body.agent => {}
        CredentialClass::Agent => {
            return Err(ApiError::forbidden(
                "forbidden",
                "an agent creates jobs for itself only",
            ))
        }
        CredentialClass::Job => {
            return Err(ApiError::forbidden("forbidden", "a job cannot create jobs"))
        }
    }
    let owner = principal.owner.clone();
    let plan = validate(&st, &owner, body).await?;
    match check_ceiling(&st, &owner, principal.class, &plan).await? {
        GrantVerdict::Hold => gate(
            &st,
            &principal,
            &headers,
            &request,
            GatedCall::JobGrantValues(plan),
        )
        .await
        .map(IntoResponse::into_response),
        GrantVerdict::Create => {
            let built = build(&st, &owner, &principal.subject, &plan).await?;
            let event = audit_event(&principal, "job.create", &built.job.id, "ok", &request);
            st.store
                .create_job(
                    &built.job,
                    &built.placeholders,
                    &built.issued,
                    event,
                    st.now(),
                )
                .await?;
            st.owner_cache.insert(&built.job.id, &owner);
            Ok((StatusCode::CREATED, Json(built.answer())).into_response())
        }
    }
}

/// The request checked against the grammars and the owner's agents and
/// secrets (`422` naming the entry).
async fn validate(st: &AppState, owner: &Email, body: CreateJob) -> ApiResult<JobPlan> {
    validate_env_vars(body.grants.iter().map(|g| g.env_var.as_str()))
        .map_err(|e| unprocessable("invalid_grant", e.to_string()))?;
    if !st.store.agent_exists(owner, &body.agent).await? {
        return Err(unprocessable(
            "unknown_agent",
            format!("agent {:?} is not registered", body.agent),
        ));
    }
    let mut grants = Vec::with_capacity(body.grants.len());
    for g in &body.grants {
        let mode = match g.mode.as_deref() {
            None => GrantMode::Placeholder,
            Some(m) => GrantMode::parse(m).ok_or_else(|| {
                unprocessable(
                    "invalid_grant",
                    format!("grant {}: mode must be placeholder or value", g.env_var),
                )
            })?,
        };
        if st.store.secret(owner, &g.secret).await?.is_none() {
            return Err(unprocessable(
                "unknown_secret",
                format!("grant {}: no secret named {:?}", g.env_var, g.secret),
            ));
        }
        grants.push(Grant {
            env_var: g.env_var.clone(),
            secret: g.secret.clone(),
            mode,
        });
    }
    let packages = body
        .packages
        .iter()
        .map(|p| Package::parse(p).map(|p| p.as_str().to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unprocessable("invalid_package", e.to_string()))?;
    let allow_hosts = body
        .egress
        .allow_hosts
        .iter()
        .map(|h| {
            if h == "*" {
                Some(h.clone())
            } else {
                normalise_host_pattern(h)
            }
            .ok_or_else(|| {
                unprocessable(
                    "invalid_host",
                    format!(
                        "allow_hosts entry {:?} is not a host name, *.suffix or *",
                        h
                    ),
                )
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    if let Some(ttl) = body.ttl_seconds {
        st.auth
            .policy
            .lifetime(CredentialClass::Job, Some(ttl))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    Ok(JobPlan {
        agent: body.agent,
        grants,
        packages,
        ttl_seconds: body.ttl_seconds,
        allow_hosts,
    })
}

fn job_json(job: &JobRecord) -> Value {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or_else(|_| json!([]));
    json!({
        "job_id": job.id,
        "agent": job.agent,
        "created_by": job.created_by,
        "created_at": rfc3339(job.created_at),
        "expires_at": rfc3339(job.expires_at),
        "deleted": job.deleted_at.is_some(),
        "packages": parse(&job.packages),
        "egress": { "allow_hosts": parse(&job.allow_hosts) },
        "grants": job.grants.iter().map(|g| json!({"env_var": g.env_var, "secret": g.secret, "mode": g.mode.as_str()})).collect::<Vec<_>>(),
    })
}

/// Scope `jobs:read`: the caller's owner's jobs.
pub async fn list(principal: Principal, State(st): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(
        st.store
            .jobs(&principal.owner)
            .await?
            .iter()
            .map(job_json)
            .collect(),
    ))
}

async fn owned_job(st: &AppState, owner: &Email, id: &str) -> ApiResult<JobRecord> {
    // Another owner's job is "not found", not "forbidden": no oracle.
    st.store
        .job(id)
        .await?
        .filter(|j| j.owner == *owner)
        .ok_or_else(|| ApiError::NotFound("no such job".into()))
}

/// Scope `jobs:read`, same owner; with the job's placeholders.
pub async fn get(
    principal: Principal,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let job = owned_job(&st, &principal.owner, &id).await?;
    let mut body = job_json(&job);
    let placeholders = st.store.job_placeholders(&id).await?;
    body["placeholders"] = placeholders
        .iter()
        .map(|p| json!({"secret": p.secret, "placeholder": p.placeholder, "expires_at": rfc3339(p.expires_at)}))
        .collect();
    Ok(Json(body))
}

/// Scope `jobs:create`, same owner. Revokes the job token, drops its
/// placeholders and expires its pending approvals. Gated only when the
/// configuration adds `job.delete`.
pub async fn delete(
    principal: Principal,
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: RequestId,
) -> ApiResult<GateOutcome> {
    let job = owned_job(&st, &principal.owner, &id).await?;
    if job.deleted_at.is_some() {
        return Err(ApiError::NotFound("no such job".into()));
    }
    gate(
        &st,
        &principal,
        &headers,
        &request,
        GatedCall::JobDelete { id },
    )
    .await
}

/// Scope `jobs:create`: deletes every live job of the owner (a gated
/// verb, `job.delete_all`). 200 `{"deleted": n}` when run.
pub async fn delete_all(
    principal: Principal,
    State(st): State<AppState>,
    headers: HeaderMap,
    request: RequestId,
) -> ApiResult<GateOutcome> {
    crate::app::jobs::delete_all(&st, &principal, &headers, &request).await
}

/// The one answer for every way a credential request can fail.
fn no_credentials() -> ApiError {
    ApiError::forbidden("forbidden", "no credentials are available to this token")
}

/// A job token only. `[{"env_var","value"}]`, 204 without grants, and the
/// same 403 for everything the one resolver (`job_credentials.rs`, which
/// the egress proxy uses too) refuses: an unknown owner, a missing job,
/// grant or secret, an expired placeholder, a value that does not decrypt.
pub async fn credentials(
    credential: JobCredential,
    State(st): State<AppState>,
    request: RequestId,
) -> Response {
    let job_id = credential.job_id.clone();
    let token = crate::job_credentials::JobToken {
        job_id: &credential.job_id,
        owner: &credential.owner,
        jti: &credential.jti,
    };
    use crate::job_credentials::{resolve, Unresolved};
    let (result, outcome_code) = match resolve(&st, token).await {
        Ok(resolved) => {
            let list: Vec<Value> = resolved
                .env()
                .into_iter()
                .map(|(env_var, value)| json!({ "env_var": env_var, "value": value }))
                .collect();
            if list.is_empty() {
                (StatusCode::NO_CONTENT.into_response(), "ok")
            } else {
                (Json(list).into_response(), "ok")
            }
        }
        Err(Unresolved::Denied(reason)) => {
            tracing::info!(job = %job_id, reason, "credential resolution refused");
            (no_credentials().into_response(), "denied:forbidden")
        }
        Err(Unresolved::Store(e)) => (ApiError::from(e).into_response(), "error"),
    };
    let event = gatehouse_domain::audit::AuditEvent {
        actor: credential.subject.clone(),
        cls: "job".into(),
        owner: credential.owner.as_str().into(),
        action: "credentials.resolve".into(),
        target: job_id,
        outcome: outcome_code.into(),
        request_id: request.0,
    };
    if let Err(e) = st.store.append_audit(event, st.now()).await {
        return ApiError::from(e).into_response();
    }
    result
}
