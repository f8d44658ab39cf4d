//! Starting and stopping a server: used by `gatehouse serve` and by the
//! integration tests, which run the very same code on ephemeral ports.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use gatehouse_domain::clock::Clock;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::keys::SigningKeys;
use crate::rate_limit::FailureLimiter;
use crate::revocation::Revocations;
use crate::router::app_with;
use crate::startup::{self, StartError};
use crate::state::{AppState, Inner};

/// How often a server reloads signing keys written by other processes
/// (`gatehouse keys rotate`) and drops expired retired keys.
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

pub struct Running {
    pub addr: SocketAddr,
    /// Where the egress proxy listens.
    pub proxy_addr: SocketAddr,
    /// Set while the installation is unclaimed.
    pub bootstrap_code: Option<String>,
    pub state: AppState,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Waits until the server has shut down.
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Asks for a graceful shutdown and waits for it.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        self.wait().await
    }
}

/// Prepares everything, binds the listener, and serves until `shutdown`
/// resolves (or [`Running::stop`] is called).
pub async fn start(
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    start_with(config, clock, shutdown, Vec::new()).await
}

/// As [`start`], serving `extra` routes too (the web console's: the
/// binary passes `gatehouse_console::routes()`), through the one router
/// builder [`crate::router::app_with`].
pub async fn start_with(
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    extra: Vec<crate::router::Route>,
) -> Result<Running, StartError> {
    start_full(
        config,
        clock,
        shutdown,
        Extensions {
            routes: extra,
            mcp: None,
        },
    )
    .await
}

/// What other crates add to a server: routes declared with
/// [`crate::router::at`] (the console's, the MCP endpoints) and the MCP
/// gateway's caller for approved `mcp.tool` calls.
#[derive(Default)]
pub struct Extensions {
    pub routes: Vec<crate::router::Route>,
    pub mcp: Option<Arc<dyn crate::mcp_bridge::McpCaller>>,
}

/// As [`start_with`], with every extension; the MCP caller is installed
/// before anything can run an approved request (the first sweep).
pub async fn start_full(
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    extensions: Extensions,
) -> Result<Running, StartError> {
    let Extensions { routes: extra, mcp } = extensions;
    startup::ensure_data_dir(&config.data_dir)?;
    let master = startup::load_master_keys(&config)?;
    let metrics = Arc::new(crate::metrics::Metrics::new());
    // Every store call is timed: the one place the store is wrapped.
    let store = crate::store_timing::TimedStore::wrap(
        gatehouse_store::connect_with(&config.store_url(), &config.database).await?,
        metrics.clone(),
    );
    startup::check_master_key_matches(store.as_ref(), &master).await?;
    let keys = SigningKeys::empty();
    keys.load(store.as_ref(), &master, clock.now()).await?;
    // The installation's egress CA, shared by every replica.
    let ca_view =
        crate::egress_ca::load(store.as_ref(), &master, &config.data_dir, clock.now()).await?;
    let ca = Arc::new(
        gatehouse_egress::CertAuthority::from_view(&ca_view)
            .map_err(crate::egress_ca::EgressCaError::from)?,
    );
    drop(ca_view);
    let bootstrap_code = startup::prepare_bootstrap(&config, store.as_ref()).await?;
    let revocations = Revocations::new(config.revocation_max_staleness);
    crate::revocation_sync::full_sync(&revocations, store.as_ref(), clock.as_ref()).await?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen.to_string(),
        source,
    })?;

    let auth = Authenticator {
        keys: keys.clone(),
        revocations: revocations.clone(),
        refusal_audit: crate::rate_limit::RefusalAudit::default(),
        refusals: std::sync::atomic::AtomicU64::new(0),
        cache: crate::token_cache::TokenCache::new(
            crate::token_cache::DEFAULT_CAPACITY,
            clock.clone(),
        ),
        policy: config.tokens.clone(),
        clock: clock.clone(),
        store: store.clone(),
        identity: config.identity.clone(),
    };
    let bootstrap_file = config.data_dir.join(startup::BOOTSTRAP_FILE);
    let owner_cache_size = config.owner_cache_size;
    let gatekeeper = crate::gate::Gatekeeper::new(store.take_gate_key().ok_or_else(|| {
        StartError::Store(gatehouse_store::StoreError::Backend(
            "the store's gate key was taken already".into(),
        ))
    })?);
    // Both listeners are bound before anything can call out, so the
    // outbound client knows every address it must never reach.
    let proxy_listen = config.egress.listen;
    let proxy_listener =
        TcpListener::bind(proxy_listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: proxy_listen.to_string(),
                source,
            })?;
    let proxy_addr = proxy_listener
        .local_addr()
        .map_err(|source| StartError::Listen {
            addr: proxy_listen.to_string(),
            source,
        })?;
    let outbound =
        crate::outbound::client(&config, &[addr, proxy_addr], store.clone(), clock.clone())?;
    let upstreams =
        crate::upstream::Upstreams::new(&config.upstreams, &outbound, &config.tokens.issuer);
    let state = AppState(Arc::new(Inner {
        config,
        store: store.clone(),
        clock: clock.clone(),
        master: master.clone(),
        auth,
        claim_limiter: FailureLimiter::new(5, 60),
        login_limiter: FailureLimiter::new(5, 60),
        access_audit: crate::rate_limit::RefusalAudit::default(),
        bootstrap_file,
        owner_cache: crate::owner_cache::OwnerCache::new(owner_cache_size),
        metrics: metrics.clone(),
        outbound,
        upstreams,
        egress: std::sync::OnceLock::new(),
        egress_addr: std::sync::OnceLock::new(),
        gatekeeper,
        approval_feed: Arc::default(),
        mcp: std::sync::OnceLock::new(),
    }));
    if let Some(caller) = mcp {
        let _ = state.mcp.set(caller);
    }

    let engine = crate::egress_bridge::build_engine(&state, ca.clone())?;
    let _ = state.egress.set(engine.clone());
    let _ = state.egress_addr.set(proxy_addr);
    let (stop, mut stopped) = watch::channel(false);
    tokio::spawn(gatehouse_egress::serve(
        proxy_listener,
        engine,
        stopped.clone(),
    ));
    tokio::spawn(crate::revocation_sync::run(
        revocations,
        store.clone(),
        clock.clone(),
        stopped.clone(),
        metrics,
    ));
    tokio::spawn(
        state
            .approval_feed
            .clone()
            .relay(store.clone(), stopped.clone()),
    );
    tokio::spawn(crate::egress_ca::run_reload(
        ca,
        store.clone(),
        master.clone(),
        clock.clone(),
        stopped.clone(),
    ));
    let mut reload_stop = stopped.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(KEY_RELOAD_INTERVAL) => {}
                _ = reload_stop.changed() => return,
            }
            let now = clock.now();
            if let Err(e) = keys.load(store.as_ref(), &master, now).await {
                tracing::warn!("signing key reload failed: {e}");
            }
            if let Err(e) = store.sweep_signing_keys(now).await {
                tracing::warn!("signing key sweep failed: {e}");
            }
        }
    });

    crate::gate::sweeper::sweep(&state).await;
    tokio::spawn(crate::gate::sweeper::run(state.clone(), stopped.clone()));
    tokio::spawn(crate::upstream::rotation::run(
        state.clone(),
        stopped.clone(),
    ));

    let router = app_with(state.clone(), extra);
    let settings = state.config.server.clone();
    let task = tokio::spawn(async move {
        let until = async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stopped.changed() => {}
            }
        };
        crate::listener::serve(listener, router, &settings, until).await
    });
    Ok(Running {
        addr,
        proxy_addr,
        bootstrap_code,
        state,
        stop,
        task,
    })
}
