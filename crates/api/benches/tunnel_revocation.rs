//! Time from a revocation to the close of an open tunnel, 100 trials per
//! setting: one node on SQLite, one node on PostgreSQL, and two replicas
//! on one PostgreSQL (tunnel open on B, `POST /v1/tokens/revoke` on A).
//! Each trial creates a job, opens a byte-exact `CONNECT` tunnel with its
//! token to a loopback echo, revokes the token's jti over the API, and
//! notes when the client side of the tunnel sees its end.
//! Needs PostgreSQL (GATEHOUSE_TEST_DATABASE_URL, default local).
//! `cargo bench -p gatehouse-api --bench tunnel_revocation`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use gatehouse_api::config::Config;
use gatehouse_api::server::{start, Running};
use gatehouse_domain::clock::SystemClock;
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::master_key::encode_master_key;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TRIALS: usize = 100;

async fn node(url: &str, key: &str, echo: SocketAddr) -> Running {
    let dir = tempfile::tempdir().unwrap().keep();
    let env: BTreeMap<String, String> = [
        ("GATEHOUSE_LISTEN", "127.0.0.1:0".to_string()),
        ("GATEHOUSE_EGRESS_LISTEN", "127.0.0.1:0".to_string()),
        ("GATEHOUSE_DATA_DIR", dir.display().to_string()),
        ("GATEHOUSE_DATABASE_URL", url.to_string()),
        ("GATEHOUSE_MASTER_KEY", key.to_string()),
        ("GATEHOUSE_EGRESS_STATIC_HOSTS", "tcp.test=127.0.0.1".into()),
        ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8".into()),
        ("GATEHOUSE_EGRESS_ALLOWED_PORTS", echo.port().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    start(
        Config::load(None, &env).unwrap(),
        Arc::new(SystemClock),
        std::future::pending(),
    )
    .await
    .unwrap()
}

async fn call(
    http: &reqwest::Client,
    base: &Running,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Value {
    let mut req = http.post(format!("http://{}{path}", base.addr)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// Claims `a` and prepares an agent; returns the operator's session.
async fn prepare(http: &reqwest::Client, a: &Running) -> String {
    let code = a.bootstrap_code.clone().unwrap();
    let claimed = call(
        http,
        a,
        "/v1/bootstrap/claim",
        None,
        json!({"code": code, "email": "op@bench.org"}),
    )
    .await;
    let op = claimed["token"].as_str().unwrap().to_string();
    call(http, a, "/v1/agents", Some(&op), json!({"name": "bot"})).await;
    op
}

async fn tunnel(proxy: SocketAddr, token: &str, echo: SocketAddr) -> TcpStream {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("job:{token}"));
    let authority = format!("tcp.test:{}", echo.port());
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(
        format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: Basic {auth}\r\n\r\n")
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
    assert!(head.starts_with(b"HTTP/1.1 200"));
    s.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    s.read_exact(&mut back).await.unwrap();
    s
}

/// Milliseconds (from the revoke call's start, from its return) per trial.
async fn trials(
    http: &reqwest::Client,
    api: &Running,
    proxy: &Running,
    op: &str,
    echo: SocketAddr,
) -> (Vec<f64>, Vec<f64>) {
    let mut from_call = Vec::new();
    let mut from_return = Vec::new();
    for _ in 0..TRIALS {
        let job = call(
            http,
            api,
            "/v1/jobs",
            Some(op),
            json!({"agent": "bot", "egress": {"allow_hosts": ["tcp.test"]}}),
        )
        .await;
        let token = job["job_token"].as_str().unwrap().to_string();
        let me: Value = http
            .get(format!("http://{}/v1/auth/whoami", api.addr))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jti = me["jti"].as_str().unwrap().to_string();
        let mut s = tunnel(proxy.proxy_addr, &token, echo).await;
        // The end is noted by a reader of its own, so it is timed even
        // when it comes before the revoke call has returned.
        let ended = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return Instant::now(),
                    Ok(Ok(_)) => continue,
                    Err(_) => panic!("the tunnel stayed open 30 s after its revocation"),
                }
            }
        });
        let called = Instant::now();
        call(
            http,
            api,
            "/v1/tokens/revoke",
            Some(op),
            json!({"jti": jti}),
        )
        .await;
        let returned = Instant::now();
        let at = ended.await.unwrap();
        from_call.push(at.duration_since(called).as_secs_f64() * 1000.0);
        from_return.push(at.saturating_duration_since(returned).as_secs_f64() * 1000.0);
    }
    (from_call, from_return)
}

fn report(name: &str, (mut from_call, mut from_return): (Vec<f64>, Vec<f64>)) {
    let p50 = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        (v[v.len() / 2], v[v.len() - 1])
    };
    let (c50, cmax) = p50(&mut from_call);
    let (r50, rmax) = p50(&mut from_return);
    println!(
        "{name:<34} from return: p50 {r50:>7.2} ms  max {rmax:>7.2} ms | from call: p50 {c50:>7.2} ms  max {cmax:>7.2} ms"
    );
}

#[tokio::main]
async fn main() {
    let (echo, _) = gatehouse_egress::test_support::echo_upstream().await;
    let http = reqwest::Client::new();
    let key = encode_master_key(&SymmetricKey::generate())
        .trim()
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let sqlite = gatehouse_store::test_support::sqlite_url(dir.path());
    let one = node(&sqlite, &key, echo).await;
    let op = prepare(&http, &one).await;
    report(
        "one node, SQLite",
        trials(&http, &one, &one, &op, echo).await,
    );

    let url = gatehouse_store::test_support::fresh_postgres_url().await;
    let a = node(&url, &key, echo).await;
    let op = prepare(&http, &a).await;
    let b = node(&url, &key, echo).await;
    report(
        "one node, PostgreSQL",
        trials(&http, &a, &a, &op, echo).await,
    );
    report(
        "two replicas, PostgreSQL (A→B)",
        trials(&http, &a, &b, &op, echo).await,
    );
}
