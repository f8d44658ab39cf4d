//! The outside world the replicas talk to, on loopback:
//! - a TLS upstream under a test CA of its own, for two names: requests to
//!   `tunnel.chaos.test` arrive through a `CONNECT` tunnel untouched;
//!   requests to `swap.chaos.test` arrive intercepted, and the upstream
//!   itself verifies that the placeholder was swapped for the real value;
//! - a token service driven by Gatehouse's generic upstream driver
//!   (mint, revoke, whoami), which counts mints and how many ran at once:
//!   the check that one replica rotates an upstream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::net::TcpListener;

pub const TUNNEL_HOST: &str = "tunnel.chaos.test";
pub const SWAP_HOST: &str = "swap.chaos.test";

/// The test CA of the upstream world: its PEM (for the agents and for
/// `egress.extra_root_certs`) in a file.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    pub pem: String,
    pub pem_file: PathBuf,
}

impl TestCa {
    pub fn new(dir: &std::path::Path) -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "gatehouse-chaos upstream CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key)?;
        let pem = cert.pem();
        let pem_file = dir.join("upstream-ca.pem");
        std::fs::write(&pem_file, &pem)?;
        Ok(Self {
            cert,
            key,
            pem,
            pem_file,
        })
    }
}

/// What the TLS upstream saw.
#[derive(Default)]
pub struct TlsSeen {
    pub tunnel_requests: AtomicU64,
    pub swapped: AtomicU64,
    /// Requests to the swap host that arrived without the real value:
    /// a placeholder not swapped (or anything else).
    pub not_swapped: AtomicU64,
}

fn respond(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r
}

/// Starts the TLS upstream; `real_value` is the secret the placeholder
/// stands for (the upstream expects `Authorization: Bearer <value>`).
pub async fn tls_upstream(ca: &TestCa, real_value: String) -> Result<(SocketAddr, Arc<TlsSeen>)> {
    let key = KeyPair::generate()?;
    let params = CertificateParams::new(vec![TUNNEL_HOST.to_string(), SWAP_HOST.to_string()])?;
    let leaf = params.signed_by(&key, &ca.cert, &ca.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let seen = Arc::new(TlsSeen::default());
    let expected = Arc::new(format!("Bearer {real_value}"));
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (s, acceptor, expected) = (s.clone(), acceptor.clone(), expected.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (s, expected) = (s.clone(), expected.clone());
                    async move {
                        let host = req
                            .headers()
                            .get("host")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let auth = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let answer = if host.starts_with(SWAP_HOST) {
                            if auth == *expected {
                                s.swapped.fetch_add(1, Ordering::SeqCst);
                                respond(200, "swapped")
                            } else {
                                s.not_swapped.fetch_add(1, Ordering::SeqCst);
                                respond(401, "not swapped")
                            }
                        } else {
                            s.tunnel_requests.fetch_add(1, Ordering::SeqCst);
                            respond(200, "tunnel")
                        };
                        Ok::<_, Infallible>(answer)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Ok((addr, seen))
}

/// The token service's state: live tokens by value, and the counters.
#[derive(Default)]
pub struct TokenService {
    /// value → (id, live)
    tokens: Mutex<HashMap<String, (String, bool)>>,
    next_id: AtomicU64,
    pub mints: AtomicU64,
    in_flight: AtomicUsize,
    /// The most mints ever in progress at one moment.
    pub max_concurrent_mints: AtomicUsize,
    pub revokes: AtomicU64,
}

pub const TOKEN_OWNER: &str = "op@chaos.test";

impl TokenService {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, bool)>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A token the owner pastes into Gatehouse once.
    pub fn seed(&self) -> String {
        self.issue()
    }

    fn issue(&self) -> String {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        let value = format!("chaos-tok-{id}-{:016x}", rand_u64());
        self.lock().insert(value.clone(), (id.to_string(), true));
        value
    }

    fn caller(&self, req: &Request<Incoming>) -> Option<String> {
        let auth = req.headers().get("authorization")?.to_str().ok()?;
        let value = auth.strip_prefix("Bearer ")?;
        let tokens = self.lock();
        let (id, live) = tokens.get(value)?;
        live.then(|| id.clone())
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let Some(caller_id) = self.caller(&req) else {
            return respond(401, "{}");
        };
        let path = req.uri().path().to_string();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let json = |v: serde_json::Value| {
            let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
            r.headers_mut().insert(
                "content-type",
                hyper::header::HeaderValue::from_static("application/json"),
            );
            r
        };
        match path.as_str() {
            "/me" => json(serde_json::json!({"user": TOKEN_OWNER, "token_id": caller_id})),
            "/mint" => {
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_concurrent_mints.fetch_max(now, Ordering::SeqCst);
                // A mint takes a while: two rotators at once would overlap.
                tokio::time::sleep(Duration::from_millis(150)).await;
                let value = self.issue();
                let id = self
                    .lock()
                    .get(&value)
                    .map(|t| t.0.clone())
                    .unwrap_or_default();
                self.mints.fetch_add(1, Ordering::SeqCst);
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                json(serde_json::json!({"token": value, "id": id}))
            }
            "/revoke" => {
                let wanted = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_string))
                    .unwrap_or_default();
                for (id, live) in self.lock().values_mut() {
                    if *id == wanted {
                        *live = false;
                    }
                }
                self.revokes.fetch_add(1, Ordering::SeqCst);
                json(serde_json::json!({}))
            }
            _ => respond(404, "{}"),
        }
    }

    /// Tokens still live at the service.
    pub fn live(&self) -> usize {
        self.lock().values().filter(|(_, live)| *live).count()
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    u64::from_le_bytes(b)
}

/// Starts the token service on plain HTTP (loopback).
pub async fn token_service() -> Result<(SocketAddr, Arc<TokenService>)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the token service")?;
    let addr = listener.local_addr()?;
    let service = Arc::new(TokenService::default());
    let s = service.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let s = s.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let s = s.clone();
                    async move { Ok::<_, Infallible>(s.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((addr, service))
}

/// The `[[upstream]]` entry every replica gets for the token service.
pub fn upstream_config(addr: SocketAddr, rotate_every: u64) -> String {
    format!(
        r#"[[upstream]]
name = "tokens"
owner = "{TOKEN_OWNER}"
driver = "generic"
base_url = "http://{addr}"
rotate_every_seconds = {rotate_every}
lifetime_seconds = {lifetime}
[upstream.generic]
mint = {{ method = "POST", path = "/mint", body = '{{"lifetime_seconds": {{lifetime_seconds}}}}' }}
revoke = {{ method = "POST", path = "/revoke", body = '{{"id": "{{token_id}}"}}' }}
whoami = {{ method = "GET", path = "/me" }}
token_pointer = "/token"
token_id_pointer = "/id"
identity_pointer = "/user"
whoami_token_id_pointer = "/token_id"
"#,
        lifetime = rotate_every * 10
    )
}
