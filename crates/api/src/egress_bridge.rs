//! The API's side of the egress proxy: [`gatehouse_egress::JobDirectory`]
//! over the one token verifier and the store.
//!
//! - `verify`: `Authenticator::check` (signature, claims, revocation,
//!   refusals audited), then the token must be a job token whose job is
//!   live and whose recorded token is this one, for the recorded owner.
//! - `view`: the job's allow list and, per grant, the secret's real value
//!   (opened under the owner's data key), its placeholder and host
//!   binding (copied onto the placeholder at grant time) and `inject`
//!   rule. Views are kept [`VIEW_TTL`] seconds so a busy job does not
//!   decrypt on every request; a deleted job's token is revoked, which the
//!   verifier sees at once, so a kept view never outlives its job's
//!   access.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::crypto::{self, Purpose};
use gatehouse_domain::{CredentialClass, Email};
use gatehouse_egress::{
    AuthFailure, Binding, EgressAudit, Inject, JobDirectory, JobIdentity, JobView,
};

use crate::error::ApiError;
use crate::state::Inner;

/// Seconds a job's view is reused.
pub const VIEW_TTL: i64 = 5;
const MAX_VIEWS: usize = 10_000;

pub struct ApiDirectory {
    state: Weak<Inner>,
    views: Mutex<HashMap<String, (Arc<JobView>, UnixTime)>>,
    /// Job token jtis found to belong to a live job, and when. Deleting a
    /// job revokes its token, which the verifier sees first, so this only
    /// saves the store lookup on the hot path.
    live: Mutex<HashMap<String, UnixTime>>,
}

impl ApiDirectory {
    pub fn new(state: Weak<Inner>) -> Self {
        Self {
            state,
            views: Mutex::new(HashMap::new()),
            live: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self) -> Result<Arc<Inner>, String> {
        self.state
            .upgrade()
            .ok_or_else(|| "server stopped".to_string())
    }

    fn cached(&self, job_id: &str, now: UnixTime) -> Option<Arc<JobView>> {
        let views = self.views.lock().ok()?;
        views
            .get(job_id)
            .filter(|(_, at)| now - at < VIEW_TTL)
            .map(|(v, _)| v.clone())
    }

    fn keep(&self, job_id: &str, view: Arc<JobView>, now: UnixTime) {
        if let Ok(mut views) = self.views.lock() {
            if views.len() >= MAX_VIEWS {
                views.retain(|_, (_, at)| now - *at < VIEW_TTL);
                if views.len() >= MAX_VIEWS {
                    views.clear();
                }
            }
            views.insert(job_id.to_string(), (view, now));
        }
    }
}

fn hosts(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

async fn load_view(st: &Inner, job: &JobIdentity) -> Result<JobView, String> {
    let owner = Email::parse(&job.owner).map_err(|_| "bad owner".to_string())?;
    let record = st
        .store
        .job(&job.job_id)
        .await
        .map_err(|e| e.to_string())?
        .filter(|j| j.owner == owner && j.deleted_at.is_none())
        .ok_or("job unknown")?;
    let placeholders = st
        .store
        .job_placeholders(&job.job_id)
        .await
        .map_err(|e| e.to_string())?;
    let mut bindings = Vec::new();
    if !record.grants.is_empty() {
        let key = st
            .data_key(&owner)
            .await
            .map_err(|_| "data key".to_string())?
            .ok_or("owner unknown")?;
        for grant in &record.grants {
            let Some(secret) = st
                .store
                .secret(&owner, &grant.secret)
                .await
                .map_err(|e| e.to_string())?
            else {
                continue;
            };
            let Ok(value) = crypto::open(
                &key,
                Purpose::SecretValue,
                &[owner.as_str(), &grant.secret],
                &secret.sealed,
            ) else {
                tracing::warn!(job = %job.job_id, secret = %grant.secret, "a granted secret does not decrypt");
                continue;
            };
            let placeholder = placeholders.iter().find(|p| p.secret == grant.secret);
            let inject = secret
                .inject
                .as_deref()
                .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
                .and_then(|v| {
                    Some(Inject {
                        header: v.get("header")?.as_str()?.to_string(),
                        format: v.get("format")?.as_str()?.to_string(),
                    })
                });
            bindings.push(Binding {
                secret: grant.secret.clone(),
                placeholder: placeholder.map(|p| p.placeholder.clone()),
                placeholder_expires_at: placeholder.map_or(0, |p| p.expires_at),
                allowed_hosts: hosts(
                    placeholder.map_or(secret.allowed_hosts.as_str(), |p| p.allowed_hosts.as_str()),
                ),
                value,
                inject,
            });
        }
    }
    let agent_allow_hosts = st
        .store
        .agents(&owner)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|a| a.name == record.agent)
        .and_then(|a| a.allow_hosts)
        .map(|h| hosts(&h));
    Ok(JobView {
        allow_hosts: hosts(&record.allow_hosts),
        bindings,
        agent_allow_hosts,
    })
}

#[async_trait]
impl JobDirectory for ApiDirectory {
    async fn verify(&self, token: &str, peer: IpAddr) -> Result<JobIdentity, AuthFailure> {
        let st = self.state().map_err(|_| AuthFailure::Unavailable)?;
        let claims = st.auth.check(token, Some(peer)).map_err(|e| match e {
            ApiError::Unavailable(_) => AuthFailure::Unavailable,
            _ => AuthFailure::Refused,
        })?;
        if claims.cls != CredentialClass::Job {
            return Err(AuthFailure::Refused);
        }
        let (agent, job_id) = claims.sub.split_once('/').ok_or(AuthFailure::Refused)?;
        let owner = Email::parse(&claims.owner).map_err(|_| AuthFailure::Refused)?;
        let identity = JobIdentity {
            job_id: job_id.to_string(),
            subject: claims.sub.clone(),
            agent: agent.to_string(),
            owner: owner.as_str().to_string(),
        };
        let now = st.now();
        let known_live = self
            .live
            .lock()
            .ok()
            .and_then(|m| m.get(&claims.jti).copied())
            .is_some_and(|at| now - at < VIEW_TTL);
        if known_live {
            return Ok(identity);
        }
        let job = st
            .store
            .job(job_id)
            .await
            .map_err(|_| AuthFailure::Unavailable)?
            .ok_or(AuthFailure::Refused)?;
        if job.owner != owner || job.deleted_at.is_some() || job.token_jti != claims.jti {
            return Err(AuthFailure::Refused);
        }
        if let Ok(mut live) = self.live.lock() {
            if live.len() >= MAX_VIEWS {
                live.retain(|_, at| now - *at < VIEW_TTL);
                if live.len() >= MAX_VIEWS {
                    live.clear();
                }
            }
            live.insert(claims.jti.clone(), now);
        }
        Ok(identity)
    }

    async fn view(&self, job: &JobIdentity) -> Result<Arc<JobView>, String> {
        let st = self.state()?;
        let now = st.now();
        if let Some(v) = self.cached(&job.job_id, now) {
            return Ok(v);
        }
        let view = Arc::new(load_view(&st, job).await?);
        self.keep(&job.job_id, view.clone(), now);
        Ok(view)
    }

    fn audit(&self, event: EgressAudit) {
        let Ok(st) = self.state() else { return };
        let (actor, cls, owner) = match &event.job {
            Some(j) => (j.subject.clone(), "job", j.owner.clone()),
            None => (event.source.to_string(), "", String::new()),
        };
        let record = AuditEvent {
            actor,
            cls: cls.into(),
            owner,
            action: event.action.into(),
            target: event.target,
            outcome: event.outcome,
            request_id: String::new(),
        };
        let now = st.now();
        let store = st.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.append_audit(record, now).await {
                tracing::warn!("could not audit an egress event: {e}");
            }
        });
    }
}

/// Builds the proxy engine for a server: CA in the data directory,
/// `egress.static_hosts` in front of the system resolver, the judge, and
/// a loud warning per `egress.allow_private_cidrs` entry.
pub fn build_engine(
    state: &crate::state::AppState,
) -> Result<Arc<gatehouse_egress::Engine>, crate::startup::StartError> {
    use crate::startup::StartError;
    let config = &state.config;
    let err = |what: &str, e: String| StartError::Io {
        path: what.to_string(),
        source: std::io::Error::other(e),
    };
    for cidr in &config.egress.allow_private_cidrs {
        tracing::warn!(%cidr, "egress.allow_private_cidrs lets the proxy reach this internal range");
    }
    let ca = gatehouse_egress::CertAuthority::load_or_create(&config.data_dir)
        .map_err(|e| err("egress CA", e.to_string()))?;
    let static_hosts = config
        .egress
        .static_hosts
        .iter()
        .map(|(name, ip)| (name.clone(), vec![*ip]))
        .collect();
    let resolver = Arc::new(gatehouse_egress::StaticHosts::new(
        static_hosts,
        Arc::new(gatehouse_egress::SystemResolver),
    ));
    let judge = match &config.egress.judge {
        Some(j) => Some(
            gatehouse_egress::Judge::new(
                gatehouse_egress::JudgeSettings {
                    url: j.url.clone(),
                    timeout: j.timeout,
                },
                state.outbound.clone(),
            )
            .map_err(|e| err("egress judge", e))?,
        ),
        None => None,
    };
    let settings = gatehouse_egress::Settings {
        policy: gatehouse_domain::egress::EgressPolicy {
            allow_private_cidrs: config.egress.allow_private_cidrs.clone(),
            allowed_ports: config.egress.allowed_ports.clone(),
        },
        placeholder_prefix: config.placeholder_prefix.clone(),
        extra_root_certs: config.egress.extra_root_certs.clone(),
    };
    let engine = gatehouse_egress::Engine::new(
        settings,
        resolver,
        Arc::new(ApiDirectory::new(Arc::downgrade(&state.0))),
        state.clock.clone(),
        Some(Arc::new(ca)),
        judge,
    )
    .map_err(|e| err("egress.extra_root_certs", e.to_string()))?;
    Ok(Arc::new(engine))
}
