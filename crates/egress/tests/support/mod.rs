//! Fixtures for the proxy's end-to-end tests: a fake job directory,
//! loopback upstreams (plain HTTP, TLS with their own CA, raw TCP echo),
//! the proxy itself on an ephemeral port, and small clients.
#![allow(dead_code)]

pub use gatehouse_egress::test_support::*;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gatehouse_domain::clock::{Clock, ManualClock, SystemClock};
use gatehouse_domain::egress::{Cidr, EgressPolicy};
use gatehouse_domain::secret::SecretBytes;
use gatehouse_egress::{
    AuthFailure, Binding, CertAuthority, EgressAudit, Engine, Inject, JobDirectory, JobIdentity,
    JobView, Judge, Lease, Rechecked, Settings, StubResolver, TokenWatch, ViewError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const TOKEN: &str = "job-token-1";
pub const PH_API: &str = "gh_ph_1111111111111111111111111111111111111111";
pub const PH_OTHER: &str = "gh_ph_2222222222222222222222222222222222222222";
pub const REAL_API: &str = "real-api-secret-value";
pub const REAL_OTHER: &str = "real-other-secret-value";

pub struct SecretSpec {
    pub name: &'static str,
    pub placeholder: Option<&'static str>,
    pub value: &'static str,
    pub hosts: Vec<&'static str>,
    pub inject: Option<(&'static str, &'static str)>,
    pub expires_at: i64,
}

/// Tokens → job, a revocable set, one job view recipe, and the audit trail.
pub struct FakeDirectory {
    pub revoked: Mutex<HashSet<String>>,
    pub allow_hosts: Mutex<Vec<String>>,
    pub secrets: Mutex<Vec<SecretSpec>>,
    pub audits: Mutex<Vec<EgressAudit>>,
    /// When leases of the token end (the token's exp plus skew).
    pub ends_at: Mutex<i64>,
    /// Bumped on every revocation, as the API's view does.
    pub changes: tokio::sync::watch::Sender<u64>,
    /// The proxy's clock, for the lease's end.
    pub clock: ManualClock,
    /// Full verifications and re-checks asked for.
    pub verifications: std::sync::atomic::AtomicUsize,
    pub rechecks: std::sync::atomic::AtomicUsize,
    /// While set, the view is kept and given again (the same `Arc`), as
    /// the API keeps it while nothing it depends on changed;
    /// [`FakeDirectory::change_view`] drops it.
    pub keep_views: std::sync::atomic::AtomicBool,
    pub kept_view: Mutex<Option<Arc<JobView>>>,
}

impl FakeDirectory {
    pub fn audits(&self) -> Vec<EgressAudit> {
        self.audits.lock().unwrap().clone()
    }
    /// A change the job's view depends on: the next view is read anew.
    pub fn change_view(&self, change: impl FnOnce(&Self)) {
        change(self);
        *self.kept_view.lock().unwrap() = None;
    }

    pub fn revoke(&self, token: &str) {
        self.revoked.lock().unwrap().insert(token.to_string());
        self.changes.send_modify(|n| *n += 1);
    }
}

/// The fake token's jti is the token itself.
impl TokenWatch for FakeDirectory {
    fn revoked(&self, lease: &Lease) -> bool {
        self.revoked.lock().unwrap().contains(&lease.jti)
    }

    fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

pub fn job() -> JobIdentity {
    JobIdentity {
        job_id: "job1".into(),
        subject: "bot/job1".into(),
        agent: "bot".into(),
        owner: "o@x.org".into(),
        jti: "jti-1".into(),
    }
}

#[async_trait]
impl JobDirectory for FakeDirectory {
    async fn verify(&self, token: &str, _peer: IpAddr) -> Result<Lease, AuthFailure> {
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if token == TOKEN && !self.revoked.lock().unwrap().contains(token) {
            Ok(Lease {
                job: job(),
                jti: token.to_string(),
                issued_at: 0,
                ends_at: *self.ends_at.lock().unwrap(),
            })
        } else {
            Err(AuthFailure::Refused)
        }
    }

    async fn recheck(
        &self,
        lease: &Lease,
        _memo: &mut Rechecked,
        _peer: IpAddr,
    ) -> Result<(), AuthFailure> {
        self.rechecks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let expired = lease.ends_at <= self.clock.now();
        if expired || self.revoked(lease) {
            Err(AuthFailure::Refused)
        } else {
            Ok(())
        }
    }

    async fn view(&self, _job: &JobIdentity) -> Result<Arc<JobView>, ViewError> {
        let keep = self.keep_views.load(std::sync::atomic::Ordering::SeqCst);
        if let Some(kept) = self.kept_view.lock().unwrap().clone().filter(|_| keep) {
            return Ok(kept);
        }
        let bindings = self
            .secrets
            .lock()
            .unwrap()
            .iter()
            .map(|s| Binding {
                secret: s.name.into(),
                placeholder: s.placeholder.map(str::to_string),
                placeholder_expires_at: s.expires_at,
                allowed_hosts: s.hosts.iter().map(|h| h.to_string()).collect(),
                value: SecretBytes::new(s.value.as_bytes().to_vec()),
                inject: s.inject.map(|(h, f)| Inject {
                    header: h.into(),
                    format: f.into(),
                }),
            })
            .collect();
        let view = Arc::new(JobView {
            agent_allow_hosts: None,
            allow_hosts: self.allow_hosts.lock().unwrap().clone(),
            bindings,
        });
        if keep {
            *self.kept_view.lock().unwrap() = Some(view.clone());
        }
        Ok(view)
    }

    fn audit(&self, event: EgressAudit) {
        self.audits.lock().unwrap().push(event);
    }
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    pub directory: Arc<FakeDirectory>,
    pub resolver: StubResolver,
    pub clock: ManualClock,
    pub ca_file: PathBuf,
    pub _dir: tempfile::TempDir,
    pub _stop: tokio::sync::watch::Sender<bool>,
}

pub struct ProxyOptions {
    pub ports: Vec<u16>,
    pub extra_roots: Vec<PathBuf>,
    pub judge: Option<Judge>,
    pub secrets: Vec<SecretSpec>,
    pub allow_hosts: Vec<&'static str>,
}

/// The proxy with 127.0.0.0/8 let through (test upstreams live there).
pub async fn proxy(opts: ProxyOptions) -> Proxy {
    proxy_with(opts, |_| {}).await
}

/// As [`proxy`], with the settings adjusted by `tweak` (timeouts, limits).
pub async fn proxy_with(opts: ProxyOptions, tweak: impl FnOnce(&mut Settings)) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertAuthority::load_or_create(dir.path()).unwrap();
    let ca_file = dir.path().join(gatehouse_egress::ca::CA_CERT_FILE);
    let clock = ManualClock::new(SystemClock.now());
    let directory = Arc::new(FakeDirectory {
        revoked: Mutex::new(HashSet::new()),
        allow_hosts: Mutex::new(opts.allow_hosts.iter().map(|s| s.to_string()).collect()),
        secrets: Mutex::new(opts.secrets),
        audits: Mutex::new(Vec::new()),
        ends_at: Mutex::new(i64::MAX),
        changes: tokio::sync::watch::channel(0).0,
        clock: clock.clone(),
        verifications: Default::default(),
        rechecks: Default::default(),
        keep_views: Default::default(),
        kept_view: Mutex::new(None),
    });
    let resolver = StubResolver::new();
    let mut settings = Settings {
        policy: EgressPolicy {
            allow_private_cidrs: vec![Cidr::parse("127.0.0.0/8").unwrap()],
            allowed_ports: opts.ports,
        },
        placeholder_prefix: "gh_ph_".into(),
        // The tests name their upstream CAs; the machine's store is not theirs.
        trust: gatehouse_egress::trust::UpstreamTrust::webpki(opts.extra_roots),
        header_timeout: gatehouse_egress::DEFAULT_HEADER_TIMEOUT,
        tunnel_idle: gatehouse_egress::DEFAULT_TUNNEL_IDLE,
        max_connections_per_job: gatehouse_egress::DEFAULT_MAX_CONNECTIONS_PER_JOB,
    };
    tweak(&mut settings);
    let engine = Arc::new(
        Engine::new(
            settings,
            Arc::new(resolver.clone()),
            directory.clone(),
            Arc::new(clock.clone()),
            Some(Arc::new(ca)),
            opts.judge,
        )
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(gatehouse_egress::serve(listener, engine.clone(), stopped));
    Proxy {
        addr,
        engine,
        directory,
        resolver,
        clock,
        ca_file,
        _dir: dir,
        _stop: stop,
    }
}

pub fn secret(
    name: &'static str,
    placeholder: &'static str,
    value: &'static str,
    hosts: &[&'static str],
) -> SecretSpec {
    SecretSpec {
        name,
        placeholder: Some(placeholder),
        value,
        hosts: hosts.to_vec(),
        inject: None,
        expires_at: i64::MAX,
    }
}

/// Sends `head` (a full request head, CRLFs included) and returns the
/// response head and whatever body bytes arrived with it until close or
/// `Content-Length`.
pub async fn raw(proxy: SocketAddr, head: &str) -> (u16, String) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((headers, body)) = text.split_once("\r\n\r\n") {
            let len = headers
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

pub fn basic(token: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("job:{token}"))
    )
}

pub fn now() -> i64 {
    SystemClock.now()
}

pub fn map<K: Into<String>>(pairs: Vec<(K, IpAddr)>) -> HashMap<String, Vec<IpAddr>> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), vec![v]))
        .collect()
}

/// An HTTP/1.1 client inside an intercepted tunnel to `authority`
/// (`host:port`), trusting Gatehouse's CA as an agent would.
pub async fn intercepted(
    p: &Proxy,
    authority: &str,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>> {
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(
        format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: {}\r\n\r\n",
            basic(TOKEN)
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let host = authority.rsplit_once(':').unwrap().0.to_string();
    let tls = tokio_rustls::TlsConnector::from(client_tls_config_from(&p.ca_file))
        .connect(host.try_into().unwrap(), s)
        .await
        .unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// Sends `GET /` with `authorization` inside an intercepted tunnel; the
/// status.
pub async fn get_in_tunnel(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    authority: &str,
    authorization: &str,
) -> u16 {
    sender.ready().await.unwrap();
    let req = http::Request::builder()
        .uri("/")
        .header("host", authority)
        .header("authorization", authorization)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let r = sender.send_request(req).await.unwrap();
    let status = r.status().as_u16();
    let _ = http_body_util::BodyExt::collect(r.into_body()).await;
    status
}
