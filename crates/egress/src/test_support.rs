//! Loopback test fixtures shared by the egress tests and the API's
//! egress tests: upstreams (plain HTTP, TLS under a CA of their own, raw
//! TCP echo) that record what they received, and `curl` as the agent.
//! Compiled only with the `test-support` feature.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::net::TcpListener;

/// What an upstream saw.
#[derive(Default)]
pub struct Seen {
    pub requests: AtomicUsize,
    pub authorization: Mutex<Vec<String>>,
    pub hosts: Mutex<Vec<String>>,
}

async fn upstream_service(seen: Arc<Seen>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    seen.authorization.lock().unwrap().push(auth.clone());
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    seen.hosts.lock().unwrap().push(host);
    if req.uri().path() == "/redirect" {
        return Response::builder()
            .status(302)
            .header("location", "http://169.254.169.254/latest/meta-data/")
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    // Echo what was received: a careless API quoting the credential back.
    Response::builder()
        .header("content-type", "application/json")
        .header("x-echo", auth.clone())
        .body(Full::new(Bytes::from(format!(
            "{{\"you_sent\":\"{auth}\",\"path\":\"{}\"}}",
            req.uri().path()
        ))))
        .unwrap()
}

/// A plain HTTP upstream on loopback.
pub async fn plain_upstream() -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let s = s.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let s = s.clone();
                    async move { Ok::<_, std::convert::Infallible>(upstream_service(s, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// A client TLS config trusting exactly the certificates in `pem` (a CA
/// file's text: Gatehouse's CA, or the upstream world's).
pub fn client_tls_config(pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// [`client_tls_config`] for a PEM file.
pub fn client_tls_config_from(path: impl AsRef<std::path::Path>) -> Arc<rustls::ClientConfig> {
    client_tls_config(&std::fs::read_to_string(path).unwrap())
}

/// A server TLS config for `names`, its leaf signed by `ca`.
pub fn tls_server_config(ca: &UpstreamCa, names: &[&str]) -> Arc<rustls::ServerConfig> {
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let leaf = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    Arc::new(config)
}

/// A test CA of the upstream world, and its PEM file.
pub struct UpstreamCa {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
    pub pem_file: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn upstream_ca() -> UpstreamCa {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "Upstream test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem_file = dir.path().join("upstream-ca.pem");
    std::fs::write(&pem_file, cert.pem()).unwrap();
    UpstreamCa {
        cert,
        key,
        pem_file,
        _dir: dir,
    }
}

/// A TLS upstream for `names`, certified by `ca`, on loopback.
pub async fn tls_upstream(ca: &UpstreamCa, names: &[&str]) -> (SocketAddr, Arc<Seen>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_server_config(ca, names));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            // As real HTTPS servers do: without it, the response waits
            // behind the TLS 1.3 session tickets for a delayed ACK (40 ms).
            let _ = stream.set_nodelay(true);
            let s = s.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = service_fn(move |req| {
                    let s = s.clone();
                    async move { Ok::<_, std::convert::Infallible>(upstream_service(s, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// A raw TCP server that echoes every byte back, counting connections.
pub async fn echo_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, count)
}

/// `curl` through the proxy; returns (exit ok, stdout, stderr).
pub async fn curl(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--suppress-connect-headers"])
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A TLS server for `names`, certified by `ca`, on loopback, answering
/// every request with `handler` (given the request head). For tests that
/// need an upstream of their own shape (a package index, a git server).
pub async fn tls_server<F>(ca: &UpstreamCa, names: &[&str], handler: F) -> SocketAddr
where
    F: Fn(&http::request::Parts) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_server_config(ca, names));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, handler) = (acceptor.clone(), handler.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = service_fn(move |req: Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let (parts, _body) = req.into_parts();
                        Ok::<_, std::convert::Infallible>(handler(&parts))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

/// A kept-alive HTTP/1.1 client connection over `io` (a socket to the
/// proxy, or a TLS stream inside a tunnel).
pub async fn kept_alive<IO>(
    io: IO,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// `GET uri` with `Host: host` and `headers` on a kept-alive connection;
/// the status and the `X-Gatehouse-Deny` reason (empty if none), the
/// body read to its end.
pub async fn get_on(
    sender: &mut hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>,
    uri: &str,
    host: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use http_body_util::BodyExt;
    sender.ready().await.unwrap();
    let mut req = Request::builder().uri(uri).header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = sender
        .send_request(req.body(http_body_util::Empty::new()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let deny = resp
        .headers()
        .get("x-gatehouse-deny")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let _ = resp.into_body().collect().await;
    (status, deny)
}
