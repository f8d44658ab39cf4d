//! A job from a validated [`JobPlan`]: the secret ceiling rule that
//! decides whether it may be created (and whether a human must approve it
//! first), and the job itself (token, placeholders, row), built the same
//! way for a direct `POST /v1/jobs` and for an approved
//! `job.grant_values`.

use serde_json::{json, Map, Value};

use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::grant_ceiling::{check_grants, GrantVerdict, GrantView};
use gatehouse_domain::{CredentialClass, Email, Scope, ScopeSet};
use gatehouse_store::{GrantMode, IssuedToken, JobRecord, PlaceholderRecord};

use crate::error::{ApiError, ApiResult};
use crate::gate::JobPlan;
use crate::state::Inner;

/// The job token's subject: `<agent>/<job id>`, so revoking the agent
/// (its subject) also ends every job of it.
pub fn job_subject(agent: &str, job_id: &str) -> String {
    format!("{agent}/{job_id}")
}

/// The secret ceiling (SPEC §4, §5) for a job created by `creator`: a
/// non-interactive creator grants only secrets in the ceiling of the
/// job's agent (`403 secret_not_grantable` naming the env var), and a
/// value grant from one is held (`job.grant_values`).
pub async fn check_ceiling(
    st: &Inner,
    owner: &Email,
    creator: CredentialClass,
    plan: &JobPlan,
) -> ApiResult<GrantVerdict> {
    let ceiling: Vec<String> = if creator.is_interactive() {
        Vec::new()
    } else {
        st.store
            .agents(owner)
            .await?
            .into_iter()
            .find(|a| a.name == plan.agent)
            .and_then(|a| a.secrets)
            .map(|text| serde_json::from_str(&text).map_err(ApiError::internal))
            .transpose()?
            .unwrap_or_default()
    };
    let grants = plan.grants.iter().map(|g| GrantView {
        env_var: &g.env_var,
        secret: &g.secret,
        by_value: g.mode == GrantMode::Value,
    });
    check_grants(creator, &ceiling, grants)
        .map_err(|e| ApiError::forbidden("secret_not_grantable", e.to_string()))
}

/// A job ready to be stored, and what its creator is answered.
pub struct BuiltJob {
    pub job: JobRecord,
    pub placeholders: Vec<PlaceholderRecord>,
    pub issued: IssuedToken,
    pub token: String,
    pub env: Map<String, Value>,
}

impl BuiltJob {
    /// The answer without the job token (shown to deciders too).
    pub fn shown(&self) -> Value {
        json!({
            "job_id": self.job.id,
            "expires_at": rfc3339(self.job.expires_at),
            "env": self.env,
        })
    }

    /// The creator's answer: `{"job_id","job_token","expires_at","env"}`.
    pub fn answer(&self) -> Value {
        let mut body = self.shown();
        body["job_token"] = json!(self.token);
        body
    }
}

/// Signs the job token and makes the placeholders. A granted secret that
/// is gone is `422 unknown_secret` naming the grant.
pub async fn build(
    st: &Inner,
    owner: &Email,
    created_by: &str,
    plan: &JobPlan,
) -> ApiResult<BuiltJob> {
    let job_id = gatehouse_domain::codes::random_id();
    let subject = job_subject(&plan.agent, &job_id);
    let (token, claims) = st
        .auth
        .issue(
            CredentialClass::Job,
            &subject,
            owner,
            ScopeSet::of(&[Scope::CredentialsRead]),
            plan.ttl_seconds,
        )
        .await?;
    let now = st.now();
    let mut placeholders = Vec::new();
    let mut env = Map::new();
    for g in plan
        .grants
        .iter()
        .filter(|g| g.mode == GrantMode::Placeholder)
    {
        let secret =
            st.store
                .secret(owner, &g.secret)
                .await?
                .ok_or_else(|| ApiError::Unprocessable {
                    code: "unknown_secret",
                    message: format!("grant {}: no secret named {:?}", g.env_var, g.secret),
                })?;
        let placeholder = format!(
            "{}{}",
            st.config.placeholder_prefix,
            hex::encode(gatehouse_domain::codes::random_array::<20>())
        );
        env.insert(g.env_var.clone(), Value::String(placeholder.clone()));
        placeholders.push(PlaceholderRecord {
            placeholder,
            owner: owner.clone(),
            job_id: job_id.clone(),
            secret: g.secret.clone(),
            allowed_hosts: secret.allowed_hosts,
            expires_at: now + st.config.placeholder_ttl_seconds,
        });
    }
    let job = JobRecord {
        id: job_id.clone(),
        owner: owner.clone(),
        agent: plan.agent.clone(),
        created_by: created_by.to_string(),
        token_jti: claims.jti.clone(),
        packages: serde_json::to_string(&plan.packages).map_err(ApiError::internal)?,
        allow_hosts: serde_json::to_string(&plan.allow_hosts).map_err(ApiError::internal)?,
        created_at: now,
        expires_at: claims.exp,
        deleted_at: None,
        grant_count: plan.grants.len() as i64,
        grants: plan.grants.clone(),
    };
    let issued = IssuedToken {
        jti: claims.jti.clone(),
        owner: owner.clone(),
        subject,
        class: CredentialClass::Job,
        scope: claims.scope.clone(),
        iat: claims.iat,
        exp: claims.exp,
    };
    Ok(BuiltJob {
        job,
        placeholders,
        issued,
        token,
        env,
    })
}
