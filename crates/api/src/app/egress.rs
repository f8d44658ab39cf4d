//! What the egress proxy would say about a URL for the caller (SPEC §6,
//! §13 `egress_check`), decided by the proxy engine's own check
//! (`Engine::preflight`: the address rules, the allow list, one checked
//! resolution), never by a copy of it, and without connecting.
//!
//! Whose allow list: a job's is its own (the view the proxy builds for
//! it, through the same resolver, so a job whose credentials do not
//! resolve gets the proxy's uniform refusal); an agent's is its egress
//! policy (every job of the agent is held to it; a job's own list may
//! narrow it further); a human session or an api token has no allow list
//! of its own, so only the address rules apply.

use std::sync::Arc;

use gatehouse_domain::{CredentialClass, Principal};
use gatehouse_egress::directory::{JobIdentity, JobView, ViewError};
use gatehouse_egress::Refusal;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The proxy's answer, in advance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressVerdict {
    /// The target passes; the addresses the proxy would connect to.
    Allowed {
        host: String,
        addresses: Vec<String>,
        /// A judge is configured and still decides each request.
        judged: bool,
    },
    /// Refused: `reason` is the `X-Gatehouse-Deny` value (`ssrf`,
    /// `not_allowed`, ...) or, for refusals without one, the proxy's code
    /// (`bad_request` for a malformed URL, `bad_gateway` when the name
    /// does not resolve).
    Refused {
        reason: &'static str,
        status: u16,
        message: String,
    },
}

/// At most this many bytes of URL.
pub const MAX_URL_BYTES: usize = 2048;

/// Any credential. `url`: an absolute `http://` or `https://` URL.
pub async fn check(st: &AppState, principal: &Principal, url: &str) -> ApiResult<EgressVerdict> {
    if url.is_empty() || url.len() > MAX_URL_BYTES {
        return Err(ApiError::bad_request(format!(
            "url must be 1 to {MAX_URL_BYTES} bytes"
        )));
    }
    let engine = st
        .egress
        .get()
        .ok_or_else(|| ApiError::internal("the egress proxy is not running"))?
        .clone();
    let view = match view_for(st, &engine, principal).await? {
        Ok(view) => view,
        Err(refusal) => return Ok(refused(refusal)),
    };
    Ok(match engine.preflight(&view, url).await {
        Ok(p) => EgressVerdict::Allowed {
            host: p.admitted.host,
            addresses: p.admitted.addrs.iter().map(ToString::to_string).collect(),
            judged: p.judged,
        },
        Err(refusal) => refused(refusal),
    })
}

fn refused(refusal: Refusal) -> EgressVerdict {
    EgressVerdict::Refused {
        reason: refusal.deny_reason().unwrap_or_else(|| refusal.code()),
        status: refusal.status().as_u16(),
        message: refusal.message(),
    }
}

/// The allow list the proxy holds the caller to (see the module docs).
async fn view_for(
    st: &AppState,
    engine: &Arc<gatehouse_egress::Engine>,
    principal: &Principal,
) -> ApiResult<Result<Arc<JobView>, Refusal>> {
    let everywhere = || JobView {
        allow_hosts: vec!["*".into()],
        ..JobView::default()
    };
    Ok(Ok(match principal.class {
        CredentialClass::Job => {
            let (agent, job_id) = principal
                .subject
                .split_once('/')
                .ok_or_else(|| ApiError::forbidden("forbidden", "not a job token"))?;
            let identity = JobIdentity {
                job_id: job_id.into(),
                subject: principal.subject.clone(),
                agent: agent.into(),
                owner: principal.owner.as_str().into(),
                jti: principal.jti.clone().unwrap_or_default(),
            };
            match engine.directory.view(&identity).await {
                Ok(view) => view,
                Err(ViewError::Refused) => return Ok(Err(Refusal::NoCredentials)),
                Err(ViewError::Internal(detail)) => return Err(ApiError::internal(detail)),
            }
        }
        CredentialClass::Agent => {
            let policy = st
                .store
                .agents(&principal.owner)
                .await?
                .into_iter()
                .find(|a| a.name == principal.subject)
                .and_then(|a| a.allow_hosts)
                .and_then(|h| serde_json::from_str::<Vec<String>>(&h).ok());
            Arc::new(JobView {
                agent_allow_hosts: policy,
                ..everywhere()
            })
        }
        CredentialClass::Session | CredentialClass::Api => Arc::new(everywhere()),
    }))
}
