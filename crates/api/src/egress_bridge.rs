//! The API's side of the egress proxy: [`gatehouse_egress::JobDirectory`]
//! over the one token verifier and the one job-credential resolver.
//!
//! - `verify`: `Authenticator::check` (signature, claims, revocation,
//!   refusals audited), then the token must be a job token whose job is
//!   live and whose recorded token is this one, for the recorded owner.
//!   Its lease ends where the verifier's time window does (`exp` plus the
//!   skew allowance).
//! - `recheck`, for a connection's later requests with a token `verify`
//!   accepted: the lease's end, the revocation view's freshness and rule
//!   (`Revocations::covers_token`, the rule `revoked` and the verifier
//!   apply), and the live job again; refusals audited as the verifier's
//!   are. Only the decoding and the signature are not repeated: they
//!   cannot change for the same bytes. The lease's [`Rechecked`] memo
//!   spares what provably did not change since its last re-check: the
//!   revocation rule while the view's generation has not moved (every
//!   change that can revoke moves it), and the job's store read while it
//!   is younger than [`LIVE_TTL`] (as believed for any request).
//! - `view`: [`crate::job_credentials::resolve`], the same resolution as
//!   `GET /v1/job/credentials`: the job's allow list and, per grant, the
//!   secret's real value, its placeholder, and the secret's current host
//!   binding and `inject` rule. The view is kept
//!   ([`crate::egress_views`]) only while the store's binding epoch has
//!   not moved, which every write that could change it moves (here at
//!   once, on other replicas by NOTIFY), so the request after a replace or
//!   a delete reaching this node sees it; an epoch this node cannot vouch
//!   for means a store read per request. A resolution that fails refuses
//!   the request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::token::Claims;
use gatehouse_domain::token::TokenError;
use gatehouse_domain::{CredentialClass, Email};
use gatehouse_egress::{
    AuthFailure, Binding, EgressAudit, Inject, JobDirectory, JobIdentity, JobView, Lease,
    Rechecked, ViewError,
};

use crate::egress_views::JobViews;
use crate::error::ApiError;
use crate::job_credentials::{JobToken, Resolved, Unresolved};
use crate::state::Inner;

/// Seconds a job token found to belong to a live job is believed to. It
/// saves a store read per CONNECT; it grants nothing on its own: deleting
/// a job revokes its token, which the verifier sees first, and every view
/// re-checks the job.
pub const LIVE_TTL: i64 = 5;
const MAX_LIVE: usize = 10_000;

pub struct ApiDirectory {
    state: Weak<Inner>,
    /// Job token jtis found to belong to a live job, and when.
    live: Mutex<HashMap<String, UnixTime>>,
    /// Views kept while the binding epoch stands.
    views: JobViews,
    /// The store's binding epoch, taken on first use.
    epoch: OnceLock<gatehouse_store::BindingEpoch>,
}

impl ApiDirectory {
    pub fn new(state: Weak<Inner>) -> Self {
        Self {
            state,
            live: Mutex::new(HashMap::new()),
            views: JobViews::default(),
            epoch: OnceLock::new(),
        }
    }

    pub(crate) fn state(&self) -> Result<Arc<Inner>, String> {
        self.state
            .upgrade()
            .ok_or_else(|| "server stopped".to_string())
    }
}

/// The proxy's view of a resolved job.
fn to_view(resolved: Resolved) -> JobView {
    let bindings = resolved
        .grants
        .into_iter()
        .map(|g| Binding {
            secret: g.secret,
            placeholder_expires_at: g.placeholder.as_ref().map_or(0, |p| p.1),
            placeholder: g.placeholder.map(|p| p.0),
            allowed_hosts: g.allowed_hosts,
            value: g.value,
            inject: g.inject.map(|r| Inject {
                header: r.header,
                format: r.format,
            }),
        })
        .collect();
    JobView {
        allow_hosts: resolved.allow_hosts,
        bindings,
        agent_allow_hosts: resolved.agent_allow_hosts,
    }
}

/// The job a verified token names: a job token (`<agent>/<job id>`) of a
/// well-formed owner, or refused. One reading for requests and leases.
pub(crate) fn job_identity(claims: &Claims) -> Result<JobIdentity, AuthFailure> {
    if claims.cls != CredentialClass::Job {
        return Err(AuthFailure::Refused);
    }
    let (agent, job_id) = claims.sub.split_once('/').ok_or(AuthFailure::Refused)?;
    let owner = Email::parse(&claims.owner).map_err(|_| AuthFailure::Refused)?;
    Ok(JobIdentity {
        job_id: job_id.to_string(),
        subject: claims.sub.clone(),
        agent: agent.to_string(),
        owner: owner.as_str().to_string(),
        jti: claims.jti.clone(),
    })
}

impl ApiDirectory {
    /// The job a verified token names is live and still holds that token,
    /// for the owner the token names. Believed for [`LIVE_TTL`] seconds
    /// once read from the store; returns when it was read.
    async fn confirm_live(&self, st: &Inner, job: &JobIdentity) -> Result<UnixTime, AuthFailure> {
        let now = st.now();
        let known_live = self
            .live
            .lock()
            .ok()
            .and_then(|m| m.get(&job.jti).copied())
            .filter(|at| now - at < LIVE_TTL);
        if let Some(at) = known_live {
            return Ok(at);
        }
        let owner = Email::parse(&job.owner).map_err(|_| AuthFailure::Refused)?;
        let record = st
            .store
            .job(&job.job_id)
            .await
            .map_err(|_| AuthFailure::Unavailable)?
            .ok_or(AuthFailure::Refused)?;
        if record.owner != owner || record.deleted_at.is_some() || record.token_jti != job.jti {
            return Err(AuthFailure::Refused);
        }
        if let Ok(mut live) = self.live.lock() {
            if live.len() >= MAX_LIVE {
                live.retain(|_, at| now - *at < LIVE_TTL);
                if live.len() >= MAX_LIVE {
                    live.clear();
                }
            }
            live.insert(job.jti.clone(), now);
        }
        Ok(now)
    }
}

#[async_trait]
impl JobDirectory for ApiDirectory {
    async fn verify(&self, token: &str, peer: IpAddr) -> Result<Lease, AuthFailure> {
        let st = self.state().map_err(|_| AuthFailure::Unavailable)?;
        let claims = st.auth.check(token, Some(peer)).map_err(|e| match e {
            ApiError::Unavailable(_) => AuthFailure::Unavailable,
            _ => AuthFailure::Refused,
        })?;
        let job = job_identity(&claims)?;
        self.confirm_live(&st, &job).await?;
        Ok(Lease {
            job,
            jti: claims.jti,
            issued_at: claims.iat,
            // When the verifier stops accepting it (`check_time`).
            ends_at: claims.exp.saturating_add(st.auth.policy.clock_skew),
        })
    }

    async fn recheck(
        &self,
        lease: &Lease,
        memo: &mut Rechecked,
        peer: IpAddr,
    ) -> Result<(), AuthFailure> {
        let st = self.state().map_err(|_| AuthFailure::Unavailable)?;
        let refused = |e: TokenError| {
            st.auth.audit_refusal(&e, Some(peer));
            AuthFailure::Refused
        };
        let now = st.now();
        if lease.ends_at <= now {
            return Err(refused(TokenError::Expired));
        }
        let view = &st.auth.revocations;
        if !view.is_fresh() {
            st.auth
                .audit_refusal(&TokenError::RevocationUnavailable, Some(peer));
            return Err(AuthFailure::Unavailable);
        }
        // Taken before the rule is applied: a revocation merged meanwhile
        // moves it, and the next re-check applies the rule again.
        let generation = view.generation();
        if memo.revocations != Some(generation) {
            if view.covers_token(&crate::egress_watch::token_of(lease)) {
                return Err(refused(TokenError::Revoked));
            }
            memo.revocations = Some(generation);
        }
        if memo.live_since.is_none_or(|at| now - at >= LIVE_TTL) {
            memo.live_since = Some(self.confirm_live(&st, &lease.job).await?);
        }
        Ok(())
    }

    async fn view(&self, job: &JobIdentity) -> Result<Arc<JobView>, ViewError> {
        let st = self.state().map_err(ViewError::Internal)?;
        let epoch = self
            .epoch
            .get_or_init(|| st.store.binding_epoch())
            .current();
        let now = st.now();
        if let Some(kept) = self.views.get(job, epoch, now) {
            return Ok(kept);
        }
        let owner = Email::parse(&job.owner).map_err(|_| ViewError::Refused)?;
        let token = JobToken {
            job_id: &job.job_id,
            owner: &owner,
            jti: &job.jti,
        };
        match crate::job_credentials::resolve(&st, token).await {
            Ok(resolved) => {
                let view = Arc::new(to_view(resolved));
                self.views.keep(job, epoch, view.clone());
                Ok(view)
            }
            Err(Unresolved::Denied(reason)) => {
                tracing::info!(job = %job.job_id, reason, "egress: credential resolution refused");
                Err(ViewError::Refused)
            }
            Err(Unresolved::Store(e)) => Err(ViewError::Internal(e.to_string())),
        }
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

/// Builds the proxy engine for a server: the installation's CA (from the
/// store, `egress_ca.rs`), `egress.static_hosts` in front of the system
/// resolver, the judge, and a loud warning per `egress.allow_private_cidrs`
/// entry.
pub fn build_engine(
    state: &crate::state::AppState,
    ca: Arc<gatehouse_egress::CertAuthority>,
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
    let resolver = config.egress.resolver();
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
        policy: config.egress.policy(),
        placeholder_prefix: config.placeholder_prefix.clone(),
        trust: config.egress.upstream_trust(),
        // One slow-client rule for both listeners (SPEC §6).
        header_timeout: config.server.header_timeout,
        tunnel_idle: config.egress.tunnel_idle,
        max_connections_per_job: config.egress.max_connections_per_job,
    };
    let engine = gatehouse_egress::Engine::with_observer(
        settings,
        resolver,
        Arc::new(ApiDirectory::new(Arc::downgrade(&state.0))),
        state.clock.clone(),
        Some(ca),
        judge,
        state.metrics.clone(),
    )
    .map_err(StartError::Trust)?;
    Ok(Arc::new(engine))
}
