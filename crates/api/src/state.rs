//! What every handler can reach: store, clock, keys, the authenticator.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::clock::{Clock, UnixTime};
use gatehouse_domain::Principal;
use gatehouse_store::Store;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::keys::MasterKeys;
use crate::rate_limit::FailureLimiter;
use crate::request_id::RequestId;

pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub master: MasterKeys,
    pub auth: Authenticator,
    /// Wrong bootstrap codes per source: more than 5 a minute → 429.
    pub claim_limiter: FailureLimiter,
    pub login_limiter: FailureLimiter,
    /// Route-rule refusals of valid tokens (`access.denied`) get audit rows
    /// under the same per-source and global budget as refused tokens, so
    /// a valid token cannot flood the audit chain either.
    pub access_audit: crate::rate_limit::RefusalAudit,
    /// Where the bootstrap code was written, removed once claimed.
    pub bootstrap_file: PathBuf,
    /// Job → owner, recorded at creation.
    pub owner_cache: crate::owner_cache::OwnerCache,
    /// The one outbound client (SPEC §12): webhook forwarding, approval
    /// notifications, the judge, upstream drivers.
    pub outbound: Arc<gatehouse_egress::OutboundClient>,
    /// Prometheus metrics; the store and the proxy report here too.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Configured upstreams and their drivers (SPEC §8).
    pub upstreams: crate::upstream::Upstreams,
    /// The egress proxy engine (set once at start), for the relay route
    /// and the CA certificate route.
    pub egress: std::sync::OnceLock<Arc<gatehouse_egress::Engine>>,
    /// The one key to the store's gated actions; only `gate` reads it.
    pub gatekeeper: crate::gate::Gatekeeper,
    /// Approval created or decided on any replica: the live inbox.
    pub approval_feed: Arc<crate::approval_feed::ApprovalFeed>,
    /// Where the proxy listens (reported to `gatehouse exec`).
    pub egress_addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// The MCP gateway's caller, for approved `mcp.tool` calls (set once
    /// at start by the binary; unset, such a call fails saying so).
    pub mcp: std::sync::OnceLock<Arc<dyn crate::mcp_bridge::McpCaller>>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The owner's data key, unwrapped; `None` when the owner (and so the
    /// key) no longer exists.
    pub async fn data_key(
        &self,
        owner: &gatehouse_domain::Email,
    ) -> Result<Option<gatehouse_domain::crypto::SymmetricKey>, crate::error::ApiError> {
        let Some(wrapped) = self.store.owner_data_key(owner).await? else {
            return Ok(None);
        };
        self.master
            .unwrap_data_key(owner, &wrapped)
            .map(Some)
            .map_err(crate::error::ApiError::internal)
    }
}

/// An audit event for an act by `principal`.
pub fn audit_event(
    principal: &Principal,
    action: &str,
    target: &str,
    outcome: &str,
    request: &RequestId,
) -> AuditEvent {
    AuditEvent {
        actor: principal.subject.clone(),
        cls: principal.class.as_str().into(),
        owner: principal.owner.as_str().into(),
        action: action.into(),
        target: target.into(),
        outcome: outcome.into(),
        request_id: request.0.clone(),
    }
}
