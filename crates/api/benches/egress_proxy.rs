//! The egress proxy against the direct path, in the same run, on loopback:
//! - plain HTTP through the proxy (job token checked by the one verifier,
//!   the job's grants resolved, target check, echo guard; no placeholder:
//!   plain HTTP never carries one) vs straight to the same upstream:
//!   p50/p99 latency ratio on one keep-alive connection, and requests/s at
//!   64 connections;
//! - CONNECT tunnel setup with auth (p50) vs a bare TCP connect, and bulk
//!   throughput through a tunnel vs direct and vs a bare TCP relay (the
//!   floor for any tunnel: accept, connect, copy both ways with the same
//!   buffer sizes as the proxy's tunnels; 256 MiB each: 1 GiB takes too
//!   long on a 2-core machine shared with builds);
//! - intercepted HTTPS (warm leaf cache, swap on) vs direct TLS: requests/s
//!   on one keep-alive connection each, and apart from that the handshake
//!   (new connection, TLS, first request) p50, with a fresh client session
//!   cache (full handshakes) and with a shared one (resumed sessions).
//!
//! `cargo bench -p gatehouse-api --bench egress_proxy`. For a profile of
//! one part (`GATEHOUSE_BENCH_ONLY=plain|rate|connect|bulk|https|handshake`)
//! and, in `plain` and `https`, one path (`GATEHOUSE_BENCH_PATH=direct|bare|proxy`):
//! `valgrind --tool=callgrind <bench binary> --bench`, or `perf stat`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use gatehouse_domain::clock::SystemClock;
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::master_key::encode_master_key;
use gatehouse_egress::test_support::{
    client_tls_config, client_tls_config_from, kept_alive, plain_upstream, tls_server_config,
    tls_upstream, upstream_ca, UpstreamCa,
};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BULK: usize = 256 * 1024 * 1024;

async fn get(s: &mut SendRequest<Empty<Bytes>>, uri: &str, host: &str, headers: &[(&str, &str)]) {
    s.ready().await.unwrap();
    let mut req = http::Request::builder().uri(uri).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = s
        .send_request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.into_body().collect().await.unwrap();
}

/// `n` timed requests on each running path, the paths taking turns
/// `block` requests at a time; the latencies by path.
async fn take_turns(
    conns: &mut [SendRequest<Empty<Bytes>>; 3],
    asks: &[(&str, &[(&str, &str)]); 3],
    host: &str,
    running: [bool; 3],
    n: usize,
    block: usize,
) -> [Vec<Duration>; 3] {
    let mut lat: [Vec<Duration>; 3] = Default::default();
    for _ in 0..n.div_ceil(block) {
        for path in (0..3).filter(|&p| running[p]) {
            let (uri, headers) = asks[path];
            for _ in 0..block {
                let t = Instant::now();
                get(&mut conns[path], uri, host, headers).await;
                lat[path].push(t.elapsed());
            }
        }
    }
    lat
}

/// Zero for a path that did not run.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = (sorted.len().saturating_sub(1) as f64 * p) as usize;
    sorted.get(at).copied().unwrap_or_default()
}

async fn connect_tunnel(proxy: SocketAddr, auth: &str, authority: &str) -> TcpStream {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: {auth}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    // Nothing follows the answer's head until the client speaks (the sink
    // and the TLS upstream both wait), so whole reads cannot swallow
    // tunnel bytes.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "the proxy closed the connection");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// The floors' one forwarding loop: every request `client` sends goes
/// to `upstream` over one HTTP/1.1 connection, its answer back as it
/// came; with `origin_form`, an absolute-form target becomes origin-form
/// and `Proxy-Authorization` is dropped (a forward proxy's only work).
async fn pass_requests<C, U>(client: C, upstream: U, origin_form: bool)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    U: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper::service::service_fn;
    let (sender, conn) =
        hyper::client::conn::http1::handshake::<_, hyper::body::Incoming>(TokioIo::new(upstream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let sender = Arc::new(tokio::sync::Mutex::new(sender));
    let service = service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        let sender = sender.clone();
        async move {
            if origin_form {
                let path = req
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                *req.uri_mut() = path.parse().unwrap();
                req.headers_mut().remove("proxy-authorization");
            }
            let mut s = sender.lock().await;
            s.ready().await?;
            s.send_request(req).await
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(client), service)
        .await;
}

/// The floor for any forward proxy on this machine and runtime: a bare
/// hyper proxy (absolute-form `http://` only, one upstream connection per
/// client connection, no authentication, checks, swapping or guard). The
/// Gatehouse proxy is compared with it as well as with the direct path.
async fn bare_proxy(upstream: SocketAddr) -> SocketAddr {
    serve_each(move |client| async move {
        pass_requests(client, connect(upstream).await, true).await;
    })
    .await
}

/// A loopback listener that gives each accepted connection (no Nagle, as
/// the proxy's) to `serve` on a task of its own; its address. The floors'
/// one accept loop.
async fn serve_each<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = l.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            tokio::spawn(serve(stream));
        }
    });
    addr
}

/// A connection to `upstream`, no Nagle.
async fn connect(upstream: SocketAddr) -> TcpStream {
    let up = TcpStream::connect(upstream).await.unwrap();
    up.set_nodelay(true).unwrap();
    up
}

/// The floor for interception: a bare TLS-terminating proxy for
/// `api.test` (a leaf of the upstream world's CA, so the client trusts
/// it), each client connection with one TLS connection of its own to
/// `upstream`, requests passed through as they are: no `CONNECT`,
/// authentication, checks, swapping or guard.
async fn bare_tls_terminator(ca: &UpstreamCa, upstream: SocketAddr) -> SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_server_config(ca, &["api.test"]));
    let upstream_tls = tokio_rustls::TlsConnector::from(client_tls_config_from(&ca.pem_file));
    serve_each(move |stream| {
        let (acceptor, upstream_tls) = (acceptor.clone(), upstream_tls.clone());
        async move {
            let client = acceptor.accept(stream).await.unwrap();
            let up = upstream_tls
                .connect("api.test".try_into().unwrap(), connect(upstream).await)
                .await
                .unwrap();
            pass_requests(client, up, false).await;
        }
    })
    .await
}

/// A TCP sink: reads everything, answers with one byte at EOF.
async fn sink() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                let mut total = 0usize;
                while total < BULK {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    total += n;
                }
                let _ = s.write_all(&[1]).await;
            });
        }
    });
    addr
}

/// The floor for a tunnel: a bare TCP relay to `upstream`, copying both
/// ways with the proxy's buffer sizes, no authentication or checks.
async fn bare_relay(upstream: SocketAddr) -> SocketAddr {
    serve_each(move |mut client| async move {
        let mut up = connect(upstream).await;
        let _ = tokio::io::copy_bidirectional_with_sizes(
            &mut client,
            &mut up,
            TUNNEL_BUFFER,
            TUNNEL_BUFFER,
        )
        .await;
    })
    .await
}

/// The proxy's tunnel buffer (`egress/src/proxy.rs`).
const TUNNEL_BUFFER: usize = 256 * 1024;

async fn bulk(mut s: TcpStream) -> f64 {
    let chunk = vec![7u8; 1 << 16];
    let start = Instant::now();
    for _ in 0..BULK / chunk.len() {
        s.write_all(&chunk).await.unwrap();
    }
    let mut done = [0u8; 1];
    s.read_exact(&mut done).await.unwrap();
    BULK as f64 / (1024.0 * 1024.0) / start.elapsed().as_secs_f64()
}

/// One line for a part's three rates: direct, its floor, Gatehouse.
fn report_rates(part: &str, floor: &str, gatehouse: &str, r: &[f64]) {
    println!(
        "{part}: direct {:.0} req/s, {floor} {:.0} req/s ({:.2}), {gatehouse} {:.0} req/s, \
         ratio {:.2} (vs {floor} {:.2})",
        r[0],
        r[1],
        r[1] / r[0],
        r[2],
        r[2] / r[0],
        r[2] / r[1]
    );
}

#[tokio::main]
async fn main() {
    let ca = upstream_ca();
    let (plain, _) = plain_upstream().await;
    let (tls, _) = tls_upstream(&ca, &["api.test"]).await;
    let sink = sink().await;
    let dir = tempfile::tempdir().unwrap();
    let ports = format!("{},{},{}", plain.port(), tls.port(), sink.port());
    let env: BTreeMap<String, String> = [
        ("GATEHOUSE_LISTEN", "127.0.0.1:0".to_string()),
        ("GATEHOUSE_EGRESS_LISTEN", "127.0.0.1:0".to_string()),
        ("GATEHOUSE_DATA_DIR", dir.path().display().to_string()),
        (
            "GATEHOUSE_MASTER_KEY",
            encode_master_key(&SymmetricKey::generate())
                .trim()
                .to_string(),
        ),
        (
            "GATEHOUSE_EGRESS_STATIC_HOSTS",
            "api.test=127.0.0.1,plain.test=127.0.0.1,sink.test=127.0.0.1".into(),
        ),
        ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8".into()),
        (
            "GATEHOUSE_EGRESS_EXTRA_ROOT_CERTS",
            ca.pem_file.display().to_string(),
        ),
        ("GATEHOUSE_EGRESS_ALLOWED_PORTS", ports),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = gatehouse_api::config::Config::load(None, &env).unwrap();
    let running =
        gatehouse_api::server::start(config, Arc::new(SystemClock), std::future::pending())
            .await
            .unwrap();
    let base = format!("http://{}", running.addr);
    let proxy = running.proxy_addr;
    let client = reqwest::Client::new();
    let claim: serde_json::Value = client
        .post(format!("{base}/v1/bootstrap/claim"))
        .json(&serde_json::json!({"code": running.bootstrap_code.clone().unwrap(), "email": "op@x.org"}))
        .send().await.unwrap().json().await.unwrap();
    let op = claim["token"].as_str().unwrap().to_string();
    let put = |name: &str, host: &str| {
        client
            .put(format!("{base}/v1/secrets/{name}"))
            .bearer_auth(&op)
            .json(&serde_json::json!({"value": format!("real-{name}-value-0123456789"), "allowed_hosts": [host]}))
            .send()
    };
    put("plain", "plain.test").await.unwrap();
    put("api", "api.test").await.unwrap();
    client
        .post(format!("{base}/v1/agents"))
        .bearer_auth(&op)
        .json(&serde_json::json!({"name": "bench"}))
        .send()
        .await
        .unwrap();
    let job: serde_json::Value = client
        .post(format!("{base}/v1/jobs")).bearer_auth(&op)
        .json(&serde_json::json!({"agent": "bench",
            "grants": [{"env_var": "PLAIN", "secret": "plain"}, {"env_var": "API", "secret": "api"}],
            "egress": {"allow_hosts": ["plain.test", "api.test", "sink.test"]}}))
        .send().await.unwrap().json().await.unwrap();
    let token = job["job_token"].as_str().unwrap().to_string();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("job:{token}"))
    );
    let ph_api = format!("Bearer {}", job["env"]["API"].as_str().unwrap());

    println!("egress proxy vs direct, same run, loopback");
    // One part alone, for a profile: `GATEHOUSE_BENCH_ONLY=plain|rate|connect|bulk|https|handshake`.
    let only = std::env::var("GATEHOUSE_BENCH_ONLY").ok();
    let wants = |part: &str| only.as_deref().is_none_or(|o| o == part);
    // Within a part, one path alone: `GATEHOUSE_BENCH_PATH=direct|bare|proxy`.
    let path_only = std::env::var("GATEHOUSE_BENCH_PATH").ok();
    let runs = |path: &str| path_only.as_deref().is_none_or(|o| o == path);
    let sink_authority = format!("sink.test:{}", sink.port());
    let plain_host = format!("plain.test:{}", plain.port());
    let abs = format!("http://{plain_host}/x");
    let ca_pem = client
        .get(format!("{base}/v1/egress/ca.pem"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let upstream_pem = std::fs::read_to_string(&ca.pem_file).unwrap();
    let api_host = format!("api.test:{}", tls.port());
    if wants("plain") {
        // 1. Plain HTTP latency, one keep-alive connection each.
        let n = std::env::var("GATEHOUSE_BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        // 0: direct, 1: the bare hyper proxy, 2: Gatehouse, taking turns
        // so that a busy moment hits them alike.
        let mut conns = [
            kept_alive(TcpStream::connect(plain).await.unwrap()).await,
            kept_alive(TcpStream::connect(bare_proxy(plain).await).await.unwrap()).await,
            kept_alive(TcpStream::connect(proxy).await.unwrap()).await,
        ];
        let direct = [("authorization", "Bearer direct")];
        // Both proxies get the very same request, credential included
        // (the bare one drops it unread): what differs is the proxy's own
        // work, not what the client builds and sends.
        let proxied = [
            ("proxy-authorization", auth.as_str()),
            ("authorization", "Bearer direct"),
        ];
        let asks: [(&str, &[(&str, &str)]); 3] =
            [("/x", &direct), (&abs, &proxied), (&abs, &proxied)];
        let running = ["direct", "bare", "proxy"].map(runs);
        let host = plain_host.as_str();
        // Untimed first requests: connections and caches warm.
        take_turns(&mut conns, &asks, host, running, 200, 1).await;
        // Request by request, each path's request runs right after the
        // other two paths' (their code and data in the caches); in turns
        // of 50, each path runs as a proxy serving a stream of requests
        // does. Both see the same busy moments.
        for (block, how) in [(1, "every request"), (50, "turns of 50")] {
            let lat = take_turns(&mut conns, &asks, host, running, n, block).await;
            let [mut direct_lat, mut bare_lat, mut proxy_lat] = lat;
            direct_lat.sort();
            bare_lat.sort();
            proxy_lat.sort();
            for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
                let (dq, bq, pq) = (
                    percentile(&direct_lat, q),
                    percentile(&bare_lat, q),
                    percentile(&proxy_lat, q),
                );
                println!(
                    "plain HTTP {name} ({how}): direct {:>7.1} µs, bare hyper proxy {:>7.1} µs \
                     ({:.2}×), Gatehouse proxy {:>7.1} µs, ratio {:.2} (vs bare proxy {:.2}×)",
                    dq.as_secs_f64() * 1e6,
                    bq.as_secs_f64() * 1e6,
                    bq.as_secs_f64() / dq.as_secs_f64(),
                    pq.as_secs_f64() * 1e6,
                    pq.as_secs_f64() / dq.as_secs_f64(),
                    pq.as_secs_f64() / bq.as_secs_f64()
                );
            }
        }
    }
    if wants("rate") {
        // 2. Plain HTTP requests/s at 64 connections.
        let conns = 64;
        let per = 100;
        let mut rates = Vec::new();
        let bare = bare_proxy(plain).await;
        // 0: direct, 1: bare hyper proxy, 2: Gatehouse.
        for path in 0..3 {
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..conns {
                let (abs, host, auth) = (abs.clone(), plain_host.clone(), auth.clone());
                tasks.push(tokio::spawn(async move {
                    let target = [plain, bare, proxy][path];
                    let mut s = kept_alive(TcpStream::connect(target).await.unwrap()).await;
                    for _ in 0..per {
                        match path {
                            0 => {
                                get(&mut s, "/x", &host, &[("authorization", "Bearer direct")])
                                    .await
                            }
                            // Both proxies, the same request (as in part 1).
                            _ => {
                                get(
                                    &mut s,
                                    &abs,
                                    &host,
                                    &[
                                        ("proxy-authorization", &auth),
                                        ("authorization", "Bearer direct"),
                                    ],
                                )
                                .await
                            }
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            rates.push(f64::from(conns * per) / start.elapsed().as_secs_f64());
        }
        report_rates(
            &format!("plain HTTP at {conns} connections"),
            "bare hyper proxy",
            "Gatehouse proxy",
            &rates,
        );
    }
    if wants("connect") {
        // 3. CONNECT setup with auth vs bare TCP connect.
        let mut bare = Vec::new();
        let mut tunnel = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            drop(TcpStream::connect(sink).await.unwrap());
            bare.push(t.elapsed());
            let t = Instant::now();
            drop(connect_tunnel(proxy, &auth, &sink_authority).await);
            tunnel.push(t.elapsed());
        }
        bare.sort();
        tunnel.sort();
        let (b50, t50) = (percentile(&bare, 0.5), percentile(&tunnel, 0.5));
        println!(
            "CONNECT setup with auth p50 {:.1} µs vs bare TCP connect {:.1} µs, ratio {:.1}",
            t50.as_secs_f64() * 1e6,
            b50.as_secs_f64() * 1e6,
            t50.as_secs_f64() / b50.as_secs_f64()
        );
    }
    if wants("bulk") {
        // 4. Bulk through a tunnel (256 MiB), best of three rounds each, the
        // paths interleaved so a busy moment hits them alike.
        let relay = bare_relay(sink).await;
        let (mut direct_mbs, mut relay_mbs, mut tunnel_mbs) = (0f64, 0f64, 0f64);
        for _ in 0..3 {
            direct_mbs = direct_mbs.max(bulk(TcpStream::connect(sink).await.unwrap()).await);
            relay_mbs = relay_mbs.max(bulk(TcpStream::connect(relay).await.unwrap()).await);
            tunnel_mbs =
                tunnel_mbs.max(bulk(connect_tunnel(proxy, &auth, &sink_authority).await).await);
        }
        println!(
            "bulk 256 MiB: direct {direct_mbs:.0} MiB/s, bare TCP relay {relay_mbs:.0} MiB/s, \
         tunnel {tunnel_mbs:.0} MiB/s, ratio {:.2} (vs bare relay {:.2})",
            tunnel_mbs / direct_mbs,
            tunnel_mbs / relay_mbs
        );
    }
    if wants("https") {
        // 5. Intercepted HTTPS (warm leaf) vs direct TLS, one connection each.
        let m = 2000;
        let mut rates = Vec::new();
        let terminator = bare_tls_terminator(&ca, tls).await;
        // 0: direct, 1: the bare TLS terminator, 2: intercepted by Gatehouse.
        for path in 0..3 {
            if !runs(["direct", "bare", "proxy"][path]) {
                rates.push(f64::NAN);
                continue;
            }
            let (config, tcp) = match path {
                0 => (
                    client_tls_config(&upstream_pem),
                    TcpStream::connect(tls).await.unwrap(),
                ),
                1 => (
                    client_tls_config(&upstream_pem),
                    TcpStream::connect(terminator).await.unwrap(),
                ),
                _ => (
                    client_tls_config(&ca_pem),
                    connect_tunnel(proxy, &auth, &api_host).await,
                ),
            };
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect("api.test".try_into().unwrap(), tcp)
                .await
                .unwrap();
            let mut s = kept_alive(stream).await;
            let header = if path == 2 {
                ph_api.as_str()
            } else {
                "Bearer direct"
            };
            for _ in 0..100 {
                get(&mut s, "/x", &api_host, &[("authorization", header)]).await;
            }
            let start = Instant::now();
            for _ in 0..m {
                get(&mut s, "/x", &api_host, &[("authorization", header)]).await;
            }
            rates.push(f64::from(m) / start.elapsed().as_secs_f64());
        }
        report_rates(
            "HTTPS one connection",
            "bare TLS-terminating proxy",
            "intercepted",
            &rates,
        );
    }
    if wants("handshake") {
        // 6. Handshakes apart: a new connection, its TLS handshake and one
        // request, p50. Full: a fresh client (no session to resume) each
        // time. Resumed: one client config for all, so its sessions resume
        // (towards the proxy's cached per-host leaf config; the proxy's own
        // upstream config is shared, so its side resumes too).
        let h = 150;
        for resumed in [false, true] {
            let mut p50 = Vec::new();
            for intercepted in [false, true] {
                let pem = if intercepted { &ca_pem } else { &upstream_pem };
                let shared = client_tls_config(pem);
                let header = if intercepted {
                    ph_api.as_str()
                } else {
                    "Bearer direct"
                };
                let mut times = Vec::with_capacity(h);
                for i in 0..h + 10 {
                    let config = if resumed {
                        shared.clone()
                    } else {
                        client_tls_config(pem)
                    };
                    let t = Instant::now();
                    let tcp = if intercepted {
                        connect_tunnel(proxy, &auth, &api_host).await
                    } else {
                        TcpStream::connect(tls).await.unwrap()
                    };
                    let stream = tokio_rustls::TlsConnector::from(config)
                        .connect("api.test".try_into().unwrap(), tcp)
                        .await
                        .unwrap();
                    let mut s = kept_alive(stream).await;
                    get(&mut s, "/x", &api_host, &[("authorization", header)]).await;
                    if i >= 10 {
                        times.push(t.elapsed());
                    }
                }
                times.sort();
                p50.push(percentile(&times, 0.5));
            }
            println!(
                "HTTPS new connection + {} handshake + 1 request p50: direct TLS {:.0} µs, \
             intercepted {:.0} µs, ratio {:.2}",
                if resumed { "resumed" } else { "full" },
                p50[0].as_secs_f64() * 1e6,
                p50[1].as_secs_f64() * 1e6,
                p50[1].as_secs_f64() / p50[0].as_secs_f64()
            );
        }
    }
    let _ = running.stop().await;
}
