//! Open connections through the real proxy on loopback: revocation and
//! expiry close byte-exact and intercepted tunnels, idle tunnels close,
//! a job's connections are capped, and slow request heads are dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use gatehouse_domain::clock::Clock;
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn opts(ports: Vec<u16>) -> ProxyOptions {
    ProxyOptions {
        ports,
        extra_roots: vec![],
        judge: None,
        secrets: vec![],
        allow_hosts: vec!["*"],
    }
}

/// Sends `CONNECT authority` and returns the status and, on 200, the
/// open tunnel.
async fn connect(proxy: SocketAddr, authority: &str) -> (u16, TcpStream) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let head = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: {}\r\n\r\n",
        basic(TOKEN)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    while !resp.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if s.read_exact(&mut b).await.is_err() {
            break;
        }
        resp.push(b[0]);
    }
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status != 200 {
        // Refusals carry a JSON body; read it so the caller can see it.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_millis(200), s.read_to_end(&mut rest)).await;
    }
    (status, s)
}

/// A byte goes through the echo tunnel and comes back.
async fn echoes(s: &mut TcpStream) {
    s.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&b, b"x");
}

/// Bounded polling: the connection ends (EOF or reset) within 10 s.
async fn ends<S: AsyncRead + Unpin>(s: &mut S) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// An intercepted connection to `api.test` through the proxy, TLS under
/// Gatehouse's CA, one request answered.
async fn intercepted(
    p: &Proxy,
    port: u16,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let authority = format!("api.test:{port}");
    let (status, s) = connect(p.addr, &authority).await;
    assert_eq!(status, 200);
    let mut tls = client_tls(p, s).await;
    tls.write_all(format!("GET / HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("you_sent") {
        let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    tls
}

async fn client_tls(
    p: &Proxy,
    s: TcpStream,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    tokio_rustls::TlsConnector::from(client_tls_config_from(&p.ca_file))
        .connect("api.test".try_into().unwrap(), s)
        .await
        .unwrap()
}

#[tokio::test]
async fn revoking_the_token_closes_its_open_tunnels_byte_exact_and_intercepted() {
    let (echo, _) = echo_upstream().await;
    let ca = upstream_ca();
    let (up, seen) = tls_upstream(&ca, &["api.test"]).await;
    let p = proxy(ProxyOptions {
        extra_roots: vec![ca.pem_file.clone()],
        secrets: vec![secret("api", PH_API, REAL_API, &["api.test"])],
        ..opts(vec![echo.port(), up.port()])
    })
    .await;
    p.resolver.answer("tcp.test", vec![ip("127.0.0.1")]);
    p.resolver.answer("api.test", vec![ip("127.0.0.1")]);
    let (status, mut tunnel) = connect(p.addr, &format!("tcp.test:{}", echo.port())).await;
    assert_eq!(status, 200);
    echoes(&mut tunnel).await;
    let mut tls = intercepted(&p, up.port()).await;
    assert_eq!(p.engine.connections.held_by("job1"), 2);

    p.directory.revoke(TOKEN);
    assert!(ends(&mut tunnel).await, "the byte-exact tunnel stayed open");
    assert!(
        ends(&mut tls).await,
        "the intercepted connection stayed open"
    );
    assert_eq!(seen.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(p.engine.connections.open_count(), 0);
    let (status, _) = connect(p.addr, &format!("tcp.test:{}", echo.port())).await;
    assert_eq!(status, 407, "reopening is refused");
}

#[tokio::test]
async fn an_expired_token_closes_its_open_tunnel() {
    let (echo, _) = echo_upstream().await;
    let p = proxy(opts(vec![echo.port()])).await;
    p.resolver.answer("tcp.test", vec![ip("127.0.0.1")]);
    *p.directory.ends_at.lock().unwrap() = p.clock.now() + 60;
    let (status, mut tunnel) = connect(p.addr, &format!("tcp.test:{}", echo.port())).await;
    assert_eq!(status, 200);
    echoes(&mut tunnel).await;
    p.clock.advance(61);
    assert!(ends(&mut tunnel).await, "the tunnel outlived its token");
}

#[tokio::test]
async fn a_tunnel_without_traffic_closes_after_the_idle_time() {
    let (echo, _) = echo_upstream().await;
    let p = proxy_with(opts(vec![echo.port()]), |s| {
        s.tunnel_idle = Duration::from_secs(2)
    })
    .await;
    p.resolver.answer("tcp.test", vec![ip("127.0.0.1")]);
    let (status, mut tunnel) = connect(p.addr, &format!("tcp.test:{}", echo.port())).await;
    assert_eq!(status, 200);
    // Traffic every 200 ms for twice the idle time keeps it open...
    for _ in 0..20 {
        echoes(&mut tunnel).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    echoes(&mut tunnel).await;
    // ...and silence closes it.
    assert!(ends(&mut tunnel).await, "the idle tunnel stayed open");
    assert_eq!(p.engine.connections.open_count(), 0);
}

#[tokio::test]
async fn a_job_over_its_connection_limit_gets_429_until_one_closes() {
    let (echo, _) = echo_upstream().await;
    let (plain, _) = plain_upstream().await;
    let p = proxy_with(opts(vec![echo.port(), plain.port()]), |s| {
        s.max_connections_per_job = 2
    })
    .await;
    p.resolver.answer("tcp.test", vec![ip("127.0.0.1")]);
    p.resolver.answer("plain.test", vec![ip("127.0.0.1")]);
    let authority = format!("tcp.test:{}", echo.port());
    let (_, mut first) = connect(p.addr, &authority).await;
    let (status, mut second) = connect(p.addr, &authority).await;
    assert_eq!(status, 200);
    echoes(&mut first).await;
    echoes(&mut second).await;

    let head = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: {}\r\n\r\n",
        basic(TOKEN)
    );
    let (status, text) = raw(p.addr, &head).await;
    assert_eq!(status, 429, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("x-gatehouse-deny: throttled"),
        "{text}"
    );
    assert!(text.contains("\"code\":\"throttled\""), "{text}");
    // A plain request needing a new upstream connection is held to it too.
    let plain_head = format!(
        "GET http://plain.test:{}/ HTTP/1.1\r\nHost: plain.test\r\nProxy-Authorization: {}\r\n\r\n",
        plain.port(),
        basic(TOKEN)
    );
    assert_eq!(raw(p.addr, &plain_head).await.0, 429);

    // Closing one frees a place.
    drop(first);
    let mut status = 0;
    for _ in 0..100 {
        let (s, _) = connect(p.addr, &authority).await;
        status = s;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_client_that_does_not_finish_its_request_head_is_disconnected() {
    let ca = upstream_ca();
    let (up, _) = tls_upstream(&ca, &["api.test"]).await;
    let p = proxy_with(
        ProxyOptions {
            extra_roots: vec![ca.pem_file.clone()],
            secrets: vec![secret("api", PH_API, REAL_API, &["api.test"])],
            ..opts(vec![up.port()])
        },
        |s| s.header_timeout = Duration::from_secs(1),
    )
    .await;
    p.resolver.answer("api.test", vec![ip("127.0.0.1")]);
    // On the listener: half a request head, then nothing.
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.te")
        .await
        .unwrap();
    assert!(ends(&mut s).await, "a partial head held the listener");
    // Inside an intercepted connection: the same.
    let (status, s) = connect(p.addr, &format!("api.test:{}", up.port())).await;
    assert_eq!(status, 200);
    let mut tls = client_tls(&p, s).await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: api.te")
        .await
        .unwrap();
    assert!(
        ends(&mut tls).await,
        "a partial head held the intercepted connection"
    );
    // And a tunnel whose client never starts its TLS handshake.
    let (status, mut s) = connect(p.addr, &format!("api.test:{}", up.port())).await;
    assert_eq!(status, 200);
    assert!(ends(&mut s).await, "a silent client held the interception");
}
