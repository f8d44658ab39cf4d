//! What a credential may use, never a value (SPEC §13 `list_grants`).
//!
//! - A job: its grants (env var, secret name, mode) with each secret's
//!   bound hosts as they are now, read by the one job-credential resolver
//!   (`job_credentials::resolve`), so every way that can fail answers the
//!   same `403` as `GET /v1/job/credentials`; and its own allow list.
//! - An agent: its secret ceiling (the secrets its jobs may be granted
//!   without a human) with their bound hosts, and its egress policy.
//! - A human session or an api token with `secrets:write`: the owner's
//!   secrets with their bound hosts (what `GET /v1/secrets` shows);
//!   without that scope, nothing.

use serde_json::{json, Value};

use gatehouse_domain::{CredentialClass, Principal, Scope};

use crate::error::{ApiError, ApiResult};
use crate::job_credentials::{resolve, JobToken, Unresolved};
use crate::state::AppState;

fn hosts_of(json_array: &str) -> Value {
    serde_json::from_str(json_array).unwrap_or_else(|_| json!([]))
}

fn uniform() -> ApiError {
    ApiError::forbidden("forbidden", "no credentials are available to this token")
}

/// Any credential (see the module docs for what each class sees).
pub async fn list(st: &AppState, principal: &Principal) -> ApiResult<Value> {
    match principal.class {
        CredentialClass::Job => {
            let (_, job_id) = principal.subject.split_once('/').ok_or_else(uniform)?;
            let jti = principal.jti.as_deref().ok_or_else(uniform)?;
            let token = JobToken {
                job_id,
                owner: &principal.owner,
                jti,
            };
            let resolved = match resolve(st, token).await {
                Ok(r) => r,
                Err(Unresolved::Denied(_)) => return Err(uniform()),
                Err(Unresolved::Store(e)) => return Err(e.into()),
            };
            let grants: Vec<Value> = resolved
                .grants
                .iter()
                .map(|g| {
                    json!({
                        "env_var": g.env_var,
                        "secret": g.secret,
                        "mode": g.mode.as_str(),
                        "allowed_hosts": g.allowed_hosts,
                    })
                })
                .collect();
            Ok(json!({
                "cls": "job",
                "grants": grants,
                "allow_hosts": resolved.allow_hosts,
                "agent_allow_hosts": resolved.agent_allow_hosts,
            }))
        }
        CredentialClass::Agent => {
            let agent = st
                .store
                .agents(&principal.owner)
                .await?
                .into_iter()
                .find(|a| a.name == principal.subject);
            let ceiling: Vec<String> = agent
                .as_ref()
                .and_then(|a| a.secrets.as_deref())
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default();
            let policy: Value = agent
                .as_ref()
                .and_then(|a| a.allow_hosts.as_deref())
                .map_or(Value::Null, hosts_of);
            let mut secrets = Vec::with_capacity(ceiling.len());
            for name in ceiling {
                let hosts = st
                    .store
                    .secret(&principal.owner, &name)
                    .await?
                    .map(|s| hosts_of(&s.allowed_hosts));
                secrets.push(json!({
                    "secret": name,
                    "exists": hosts.is_some(),
                    "allowed_hosts": hosts.unwrap_or_else(|| json!([])),
                }));
            }
            Ok(json!({ "cls": "agent", "ceiling": secrets, "allow_hosts": policy }))
        }
        CredentialClass::Session | CredentialClass::Api => {
            let secrets: Vec<Value> = if principal.scopes.contains(Scope::SecretsWrite) {
                crate::app::secrets::list(st, principal)
                    .await?
                    .iter()
                    .map(|s| json!({ "secret": s.name, "allowed_hosts": hosts_of(&s.allowed_hosts) }))
                    .collect()
            } else {
                Vec::new()
            };
            Ok(json!({ "cls": principal.class.as_str(), "secrets": secrets }))
        }
    }
}
