//! Gatehouse's egress proxy (SPEC §6).
//!
//! Agents reach the outside world through here: a forward proxy for plain
//! `http://` requests and `CONNECT` tunnels, and a relay for SDKs that only
//! take a base URL. Every target passes one check ([`Engine::admit`]: the
//! domain's pure SSRF check, the job's allow list, the judge, one
//! resolution whose every answer is checked) before any connection, and
//! the socket goes to a checked address. Hosts that a job's placeholders
//! are bound to are intercepted (TLS terminated with Gatehouse's CA) so
//! placeholders can be swapped for real values and echoed values masked;
//! every other tunnel is passed through byte for byte. Swaps and `inject`
//! rules need a [`VerifiedTls`] proof, which only a verified upstream
//! handshake makes: plain `http://` requests carry no placeholder and get
//! no injected header.
//!
//! Who a token belongs to and what a job holds come from the API crate
//! through [`JobDirectory`]; this crate never reads the store.
//!
//! Files: `proxy.rs` (listener, dispatch, `CONNECT`), `admit.rs` (the one
//! check and dialling), `credential.rs` (`Proxy-Authorization`, verified
//! once per connection and re-checked on each request), `forward.rs` (one
//! request upstream), `intercept.rs` (TLS termination), `relay.rs`, `swap.rs`, `echo.rs`, `ca.rs`, `tls.rs`,
//! `resolver.rs`, `judge.rs`, `limits.rs`, `refusal.rs`, `directory.rs`,
//! `connections.rs` (open connections: per-job limit, idle timeout, and
//! closing them when their token stops being valid).

mod admit;
pub mod ca;
pub mod connections;
mod credential;
pub mod directory;
pub mod echo;
mod forward;
mod head_timer;
mod intercept;
pub mod judge;
pub mod limits;
pub mod outbound;
mod proxy;
pub mod refusal;
mod relay;
pub mod resolver;
pub mod swap;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod tls;
pub mod trust;

use std::sync::Arc;

use bytes::Bytes;
use gatehouse_domain::clock::Clock;
use gatehouse_domain::egress::EgressPolicy;

pub use admit::{url_target, Admitted, Preflight};
pub use ca::CertAuthority;
pub use credential::proxy_token;
pub use directory::{
    AuthFailure, Binding, EgressAudit, Inject, JobDirectory, JobIdentity, JobView, Lease,
    Rechecked, TokenWatch, ViewError,
};
pub use head_timer::HeadTimer;
pub use judge::{Judge, JudgeSettings};
pub use outbound::{OutboundClient, OutboundError};
pub use proxy::serve;
pub use refusal::Refusal;
pub use resolver::{Resolver, StaticHosts, StubResolver, SystemResolver};
pub use tls::VerifiedTls;

/// Default of [`Settings::header_timeout`] (SPEC §6: 10 s).
pub const DEFAULT_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Default of [`Settings::tunnel_idle`] (`egress.tunnel_idle_seconds`).
pub const DEFAULT_TUNNEL_IDLE: std::time::Duration = std::time::Duration::from_secs(300);
/// Default of [`Settings::max_connections_per_job`].
pub const DEFAULT_MAX_CONNECTIONS_PER_JOB: usize = 256;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of everything the proxy sends.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// The proxy's settings, validated by the API's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: EgressPolicy,
    /// Start of every placeholder: anything with this prefix and 40 hex
    /// digits that is not the job's own is refused.
    pub placeholder_prefix: String,
    /// What upstream TLS trusts (`egress.trust`, the platform store,
    /// `egress.extra_root_certs`).
    pub trust: trust::UpstreamTrust,
    /// A client that has not sent a whole request head this long after
    /// its connection opened (or its previous response) is disconnected,
    /// on the listener and inside intercepted connections; it also bounds
    /// the client's TLS handshake there. Slow-header clients would
    /// otherwise hold connections forever.
    pub header_timeout: std::time::Duration,
    /// Tunnels (byte-exact or intercepted) with no traffic in either
    /// direction for this long are closed.
    pub tunnel_idle: std::time::Duration,
    /// Open connections a job may hold; the next one is `429`.
    pub max_connections_per_job: usize,
}

/// The proxy engine: shared by the listener, the interceptor and the relay.
pub struct Engine {
    pub settings: Settings,
    pub resolver: Arc<dyn Resolver>,
    pub directory: Arc<dyn JobDirectory>,
    pub clock: Arc<dyn Clock>,
    /// `None`: interception off, every `CONNECT` is a plain tunnel.
    pub ca: Option<Arc<CertAuthority>>,
    pub upstream_tls: Arc<rustls::ClientConfig>,
    pub judge: Option<Judge>,
    /// Failed placeholder resolutions per source.
    pub failures: limits::FailureWindow,
    /// Swaps audited once per job+secret+host a minute.
    pub swap_audit: limits::AuditGate,
    /// Refusals audited once per source+reason+host a minute, and at
    /// most [`limits::REFUSAL_AUDITS_PER_MINUTE`] a minute overall.
    pub refusal_audit: limits::AuditGate,
    /// Tunnels and intercepted connections open now, per job and token.
    pub connections: Arc<connections::Connections>,
    /// Where request and connection figures go (the API's metrics).
    pub observer: Arc<dyn EgressObserver>,
}

/// The proxy's figures for whoever keeps metrics. Labels are closed sets
/// the proxy chooses (a kind, an outcome); never a host, a job or a token.
pub trait EgressObserver: Send + Sync {
    /// One proxied request or `CONNECT`, from its head to its answer:
    /// `kind` is `forward` or `connect`, `outcome` `ok` or a refusal code.
    fn request(&self, kind: &'static str, outcome: &'static str, elapsed: std::time::Duration);
    /// A tunnel, intercepted or kept upstream connection, when it closes:
    /// how long it was open. `outcome`: `closed`, or `refused` (the job's
    /// connection limit).
    fn connection(&self, outcome: &'static str, open_for: std::time::Duration);
}

/// Reports nothing.
pub struct NoObserver;

impl EgressObserver for NoObserver {
    fn request(&self, _: &'static str, _: &'static str, _: std::time::Duration) {}
    fn connection(&self, _: &'static str, _: std::time::Duration) {}
}

impl Engine {
    pub fn new(
        settings: Settings,
        resolver: Arc<dyn Resolver>,
        directory: Arc<dyn JobDirectory>,
        clock: Arc<dyn Clock>,
        ca: Option<Arc<CertAuthority>>,
        judge: Option<Judge>,
    ) -> Result<Self, trust::TrustError> {
        Self::with_observer(
            settings,
            resolver,
            directory,
            clock,
            ca,
            judge,
            Arc::new(NoObserver),
        )
    }

    /// [`Engine::new`], reporting to `observer`.
    pub fn with_observer(
        settings: Settings,
        resolver: Arc<dyn Resolver>,
        directory: Arc<dyn JobDirectory>,
        clock: Arc<dyn Clock>,
        ca: Option<Arc<CertAuthority>>,
        judge: Option<Judge>,
        observer: Arc<dyn EgressObserver>,
    ) -> Result<Self, trust::TrustError> {
        let upstream_tls = tls::upstream_config(&settings.trust)?;
        let connections =
            connections::Connections::new(settings.max_connections_per_job, observer.clone());
        Ok(Self {
            settings,
            resolver,
            directory,
            clock,
            ca,
            upstream_tls,
            judge,
            failures: limits::placeholder_failures(),
            swap_audit: limits::AuditGate::new(60),
            refusal_audit: limits::AuditGate::bounded(
                60,
                limits::MAX_ENTRIES,
                limits::REFUSAL_AUDITS_PER_MINUTE,
            ),
            connections,
            observer,
        })
    }
}
