//! Revocation reaches open connections, through the real server: a job's
//! open byte-exact tunnel and intercepted TLS connection are closed when
//! its token is revoked by jti, by subject, with its agent or its owner,
//! when the job is deleted and when the token expires; reopening is
//! refused, and so is the next request on a kept-alive plain connection
//! whose credential was verified before (re-checked, not remembered); a revocation on one replica closes a tunnel open on another
//! (PostgreSQL); the per-job connection limit and idle time come from
//! the configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gatehouse_egress::test_support::{
    client_tls_config, echo_upstream, get_on, kept_alive, plain_upstream, tls_upstream,
    upstream_ca, Seen, UpstreamCa,
};
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use reqwest::Method;
use serde_json::{json, Value};
use support::{server_with, Engine, TestServer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct World {
    s: TestServer,
    op: String,
    tls_port: u16,
    echo_port: u16,
    plain_port: u16,
    plain_seen: Arc<Seen>,
    _ca: UpstreamCa,
}

/// A server whose proxy reaches `api.test` (TLS, with its own CA) and
/// `tcp.test` (a raw echo) and `plain.test` (plain HTTP) on loopback, an agent `bot` and a secret `gh`
/// bound to `api.test` under the operator.
async fn world(engine: Engine, extra: &[(&str, &str)]) -> World {
    let ca = upstream_ca();
    let (up, _) = tls_upstream(&ca, &["api.test"]).await;
    let (echo, _) = echo_upstream().await;
    let (plain, plain_seen) = plain_upstream().await;
    let ports = format!("{},{},{}", up.port(), echo.port(), plain.port());
    let roots = ca.pem_file.display().to_string();
    let mut env = vec![
        (
            "GATEHOUSE_EGRESS_STATIC_HOSTS",
            "api.test=127.0.0.1,tcp.test=127.0.0.1,plain.test=127.0.0.1",
        ),
        ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8"),
        ("GATEHOUSE_EGRESS_EXTRA_ROOT_CERTS", &roots),
        ("GATEHOUSE_EGRESS_ALLOWED_PORTS", &ports),
    ];
    env.extend_from_slice(extra);
    let s = server_with(engine, &env).await;
    let op = s.claim("op@x.org").await;
    prepare_owner(&s, &op).await;
    World {
        s,
        op,
        tls_port: up.port(),
        echo_port: echo.port(),
        plain_port: plain.port(),
        plain_seen,
        _ca: ca,
    }
}

async fn prepare_owner(s: &TestServer, token: &str) {
    let (status, body) = s
        .json(
            Method::PUT,
            "/v1/secrets/gh",
            Some(token),
            Some(json!({"value": "real-value-1234", "allowed_hosts": ["api.test"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(token),
            Some(json!({"name": "bot"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// A job of `bot` under the owner of `token`; (job id, job token, jti).
async fn job(s: &TestServer, token: &str, ttl: Option<i64>) -> (String, String, String) {
    let mut body = json!({"agent": "bot", "grants": [{"env_var": "GH_TOKEN", "secret": "gh"}],
                          "egress": {"allow_hosts": ["api.test", "tcp.test", "plain.test"]}});
    if let Some(ttl) = ttl {
        body["ttl_seconds"] = json!(ttl);
    }
    let (status, job) = s
        .json(Method::POST, "/v1/jobs", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{job}");
    let job_token = job["job_token"].as_str().unwrap().to_string();
    let (_, me) = s
        .json(Method::GET, "/v1/auth/whoami", Some(&job_token), None)
        .await;
    (
        job["job_id"].as_str().unwrap().to_string(),
        job_token,
        me["jti"].as_str().unwrap().to_string(),
    )
}

fn proxy_addr(s: &TestServer) -> SocketAddr {
    s.running.as_ref().unwrap().proxy_addr
}

/// `CONNECT authority` with the job token; the status and the stream.
async fn connect(proxy: SocketAddr, token: &str, authority: &str) -> (u16, TcpStream) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("job:{token}"));
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let head = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: Basic {auth}\r\n\r\n"
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
    let status = String::from_utf8_lossy(&resp)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, s)
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

/// Open connections of one job: a byte-exact tunnel to the echo, an
/// intercepted TLS connection to `api.test` that has answered once, and
/// a kept-alive plain connection whose credential was verified once.
struct Open {
    tunnel: TcpStream,
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    plain: Option<SendRequest<Empty<Bytes>>>,
}

/// `GET http://plain.test/x` on a kept-alive proxy connection; the status.
async fn plain_get(w: &World, sender: &mut SendRequest<Empty<Bytes>>, token: &str) -> u16 {
    use base64::Engine as _;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("job:{token}"))
    );
    let host = format!("plain.test:{}", w.plain_port);
    let url = format!("http://{host}/x");
    get_on(sender, &url, &host, &[("proxy-authorization", &auth)])
        .await
        .0
}

async fn client_config(s: &TestServer) -> Arc<rustls::ClientConfig> {
    let pem = s
        .call(Method::GET, "/v1/egress/ca.pem", None, None)
        .await
        .text()
        .await
        .unwrap();
    client_tls_config(&pem)
}

/// Both tunnels and the kept-alive plain connection.
async fn open(w: &World, on: &TestServer, token: &str) -> Open {
    let mut open = open_tunnels(w, on, token).await;
    let mut plain = kept_alive(TcpStream::connect(proxy_addr(on)).await.unwrap()).await;
    for _ in 0..2 {
        assert_eq!(plain_get(w, &mut plain, token).await, 200);
    }
    open.plain = Some(plain);
    open
}

/// The byte-exact tunnel and the intercepted connection.
async fn open_tunnels(w: &World, on: &TestServer, token: &str) -> Open {
    let proxy = proxy_addr(on);
    let (status, mut tunnel) = connect(proxy, token, &format!("tcp.test:{}", w.echo_port)).await;
    assert_eq!(status, 200);
    tunnel.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    tunnel.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");

    let authority = format!("api.test:{}", w.tls_port);
    let (status, s) = connect(proxy, token, &authority).await;
    assert_eq!(status, 200);
    let mut tls = tokio_rustls::TlsConnector::from(client_config(on).await)
        .connect("api.test".try_into().unwrap(), s)
        .await
        .unwrap();
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
    Open {
        tunnel,
        tls,
        plain: None,
    }
}

/// Both tunnels end, the kept-alive connection's next request is refused
/// without reaching the upstream, and the token cannot open a new one.
async fn closed_and_refused(w: &World, on: &TestServer, open: &mut Open, token: &str, what: &str) {
    assert!(
        ends(&mut open.tunnel).await,
        "{what}: the tunnel stayed open"
    );
    assert!(
        ends(&mut open.tls).await,
        "{what}: the intercepted connection stayed open"
    );
    if let Some(plain) = open.plain.as_mut() {
        let sent = w.plain_seen.requests.load(Ordering::SeqCst);
        assert_eq!(
            plain_get(w, plain, token).await,
            407,
            "{what}: the next request on a kept-alive connection"
        );
        assert_eq!(
            w.plain_seen.requests.load(Ordering::SeqCst),
            sent,
            "{what}: the upstream saw the refused request"
        );
    }
    let (status, _) = connect(proxy_addr(on), token, &format!("tcp.test:{}", w.echo_port)).await;
    assert_eq!(status, 407, "{what}: reopening");
}

async fn revoke(s: &TestServer, token: &str, body: Value) {
    let (status, answer) = s
        .json(Method::POST, "/v1/tokens/revoke", Some(token), Some(body))
        .await;
    assert_eq!(status, 200, "{answer}");
}

async fn every_way_a_token_ends_closes_its_open_connections(engine: Engine) {
    let w = world(engine, &[]).await;
    let (s, op) = (&w.s, w.op.as_str());

    // By jti; another job's connections stay open throughout.
    let (_, bystander_token, _) = job(s, op, None).await;
    let mut bystander = open(&w, s, &bystander_token).await;
    let (_, token, jti) = job(s, op, None).await;
    let mut conns = open(&w, s, &token).await;
    revoke(s, op, json!({"jti": jti})).await;
    closed_and_refused(&w, s, &mut conns, &token, "jti").await;

    // By the job's subject.
    let (id, token, _) = job(s, op, None).await;
    let mut conns = open(&w, s, &token).await;
    revoke(s, op, json!({"subject": format!("bot/{id}")})).await;
    closed_and_refused(&w, s, &mut conns, &token, "subject").await;

    // The job deleted.
    let (id, token, _) = job(s, op, None).await;
    let mut conns = open(&w, s, &token).await;
    let r = s
        .call(Method::DELETE, &format!("/v1/jobs/{id}"), Some(op), None)
        .await;
    assert_eq!(r.status(), 204);
    closed_and_refused(&w, s, &mut conns, &token, "job deleted").await;

    // Expired: the token's end (plus the skew allowance) passes.
    let (_, token, _) = job(s, op, Some(60)).await;
    let mut conns = open(&w, s, &token).await;
    s.clock.advance(60 + 30);
    closed_and_refused(&w, s, &mut conns, &token, "expired").await;

    // The bystander was untouched so far.
    bystander.tunnel.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    bystander.tunnel.read_exact(&mut back).await.unwrap();

    // The agent revoked: every job of it goes, the bystander included.
    let (_, token, _) = job(s, op, None).await;
    let mut conns = open(&w, s, &token).await;
    revoke(s, op, json!({"subject": "bot"})).await;
    closed_and_refused(&w, s, &mut conns, &token, "agent").await;
    closed_and_refused(&w, s, &mut bystander, &bystander_token, "agent, other job").await;

    // The owner revoked (another owner, by the operator).
    let other = s.owner(op, "o2@x.org").await;
    prepare_owner(s, &other).await;
    let (_, token, _) = job(s, &other, None).await;
    let mut conns = open(&w, s, &token).await;
    revoke(s, op, json!({"owner": "o2@x.org"})).await;
    closed_and_refused(&w, s, &mut conns, &token, "owner").await;
}

async fn a_revocation_on_one_replica_closes_a_tunnel_open_on_another(engine: Engine) {
    let w = world(engine, &[]).await;
    let b = w.s.replica().await;
    let (_, token, jti) = job(&w.s, &w.op, None).await;
    let mut on_b = open(&w, &b, &token).await;
    revoke(&w.s, &w.op, json!({"jti": jti})).await;
    closed_and_refused(&w, &b, &mut on_b, &token, "jti on the other replica").await;
}

async fn the_connection_limit_and_idle_time_come_from_the_configuration(engine: Engine) {
    let w = world(
        engine,
        &[
            ("GATEHOUSE_EGRESS_MAX_CONNECTIONS_PER_JOB", "2"),
            ("GATEHOUSE_EGRESS_TUNNEL_IDLE_SECONDS", "1"),
        ],
    )
    .await;
    let (s, op) = (&w.s, w.op.as_str());
    let (_, token, _) = job(s, op, None).await;
    let mut conns = open_tunnels(&w, s, &token).await;
    let (status, _) = connect(proxy_addr(s), &token, &format!("tcp.test:{}", w.echo_port)).await;
    assert_eq!(status, 429, "a third connection");
    // Left alone, both close after the idle second, freeing their places.
    assert!(ends(&mut conns.tunnel).await);
    assert!(ends(&mut conns.tls).await);
    let mut status = 0;
    for _ in 0..100 {
        status = connect(proxy_addr(s), &token, &format!("tcp.test:{}", w.echo_port))
            .await
            .0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);

    // The proxy's figures: refused and closed connections, throttled
    // CONNECTs, by outcome alone.
    let (_, metrics) = s.json(Method::GET, "/metrics", None, None).await;
    let text = metrics.as_str().unwrap();
    let count = |prefix: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        count("gatehouse_egress_connection_duration_seconds_count{outcome=\"refused\"}") >= 1,
        "{text}"
    );
    assert!(
        count("gatehouse_egress_connection_duration_seconds_count{outcome=\"closed\"}") >= 2,
        "{text}"
    );
    assert!(
        count("gatehouse_egress_request_duration_seconds_count{kind=\"connect\",outcome=\"throttled\"}") >= 1,
        "{text}"
    );
}

async fn rename_table(s: &TestServer, engine: Engine, from: &str, to: &str) {
    let sql = format!("ALTER TABLE {from} RENAME TO {to}");
    match engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&s.database_url).await.unwrap();
            sqlx::query(&sql).execute(&pool).await.unwrap();
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(&s.database_url).await.unwrap();
            sqlx::query(&sql).execute(&pool).await.unwrap();
        }
    }
}

async fn a_node_that_cannot_confirm_revocations_closes_open_connections(engine: Engine) {
    let w = world(
        engine,
        &[("GATEHOUSE_REVOCATION_MAX_STALENESS_SECONDS", "1")],
    )
    .await;
    let (s, op) = (&w.s, w.op.as_str());
    let (_, token, _) = job(s, op, None).await;
    let mut conns = open(&w, s, &token).await;
    // The revocation sync can no longer read: nothing vouches for the
    // token any more, so its connections go as new requests get 503.
    rename_table(s, engine, "revocations", "revocations_away").await;
    assert!(
        ends(&mut conns.tunnel).await,
        "the tunnel outlived the view"
    );
    assert!(
        ends(&mut conns.tls).await,
        "the intercepted connection outlived the view"
    );
    assert_eq!(
        plain_get(&w, conns.plain.as_mut().unwrap(), &token).await,
        503,
        "a kept-alive connection's next request, its credential verified before"
    );
    rename_table(s, engine, "revocations_away", "revocations").await;
}

on_both_engines!(
    a_node_that_cannot_confirm_revocations_closes_open_connections,
    every_way_a_token_ends_closes_its_open_connections,
    the_connection_limit_and_idle_time_come_from_the_configuration,
);

#[tokio::test]
async fn on_postgres_a_revocation_on_one_replica_closes_a_tunnel_open_on_another() {
    a_revocation_on_one_replica_closes_a_tunnel_open_on_another(Engine::Postgres).await
}
