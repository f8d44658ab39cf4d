//! The kill switch across processes: the CLI writing straight to the
//! store, and two `gatehouse serve` replicas sharing one PostgreSQL, one of
//! which loses its database and must fail closed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{random_master_key, Sandbox, Server};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

async fn whoami_status(server: &Server, token: &str) -> u16 {
    server
        .get_with_token("/v1/auth/whoami", token)
        .await
        .status()
        .as_u16()
}

/// Polls until `whoami` answers `want`; returns how long it took.
async fn until_status(server: &Server, token: &str, want: u16, bound: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = whoami_status(server, token).await;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "still {got} after {bound:?}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn jti_of(server: &Server, token: &str) -> String {
    let me: Value = server
        .get_with_token("/v1/auth/whoami", token)
        .await
        .json()
        .await
        .unwrap();
    me["jti"].as_str().unwrap().to_string()
}

/// An `api` token minted by `session` for `subject`.
async fn api_token(server: &Server, session: &str, subject: &str) -> String {
    let r = server
        .http
        .post(server.at("/v1/tokens"))
        .bearer_auth(session)
        .json(&json!({"class": "api", "subject": subject, "scope": "audit:read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Each form of `gatehouse token revoke`, written straight to the store,
/// reaches a running server: its token, and only its, is refused within
/// a bounded poll (speed is measured by the revocation benchmark).
#[tokio::test]
async fn cli_revocations_reach_a_running_server() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    let token = server.claim_operator("op@example.com").await;
    let ci = api_token(&server, &token, "ci-bot").await;
    let other = api_token(&server, &token, "other-bot").await;
    let jti = jti_of(&server, &token).await;
    let out = sandbox.cmd(&["token", "revoke", &jti]).run().await;
    out.assert_success();
    until_status(&server, &token, 401, Duration::from_secs(5)).await;
    assert_eq!(whoami_status(&server, &ci).await, 200);

    // By subject: that subject's tokens, not the others.
    sandbox
        .cmd(&["token", "revoke", "--subject", "ci-bot"])
        .run()
        .await
        .assert_success();
    until_status(&server, &ci, 401, Duration::from_secs(5)).await;
    assert_eq!(whoami_status(&server, &other).await, 200);

    // By owner: every token of the owner.
    sandbox
        .cmd(&["token", "revoke", "--owner", "op@example.com"])
        .run()
        .await
        .assert_success();
    until_status(&server, &other, 401, Duration::from_secs(5)).await;

    let out = sandbox.cmd(&["token", "revoke"]).run().await;
    out.assert_refused();
    let out = sandbox
        .cmd(&["token", "revoke", "--owner", "not-an-email"])
        .run()
        .await;
    out.assert_refused();
    server.stop_cleanly().await;
}

/// A TCP relay in front of PostgreSQL that the test can cut and restore.
struct Relay {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let (cut, cut_rx) = watch::channel(0u64);
        let open2 = open.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !open2.load(Ordering::SeqCst) {
                    continue; // dropped: the database "is down"
                }
                let mut cut_rx = cut_rx.clone();
                cut_rx.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Self { addr, open, cut }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

fn host_port(url: &str) -> (String, SocketAddr) {
    // postgres://user@host:port/db?...
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&hostport)
        .unwrap()
        .next()
        .unwrap();
    (hostport, addr)
}

#[tokio::test]
async fn revocation_on_one_replica_is_refused_on_the_other_and_a_cut_off_replica_fails_closed() {
    let url = gatehouse_store::test_support::fresh_postgres_url().await;
    let (hostport, upstream) = host_port(&url);
    let relay = Relay::start(upstream).await;
    let relayed_url = url.replacen(&hostport, &relay.addr.to_string(), 1);
    let key = random_master_key();

    let sandbox_a = Sandbox::new();
    let sandbox_b = Sandbox::new();
    let replica = |sandbox: &Sandbox, db: &str| {
        sandbox
            .cmd(&["serve"])
            .env("GATEHOUSE_DATABASE_URL", db)
            .env("GATEHOUSE_MASTER_KEY", &key)
            .env("GATEHOUSE_REVOCATION_MAX_STALENESS_SECONDS", "2")
    };
    let a = replica(&sandbox_a, &url).start_server().await;
    let op = a.claim_operator("op@example.com").await;
    let b = replica(&sandbox_b, &relayed_url).start_server().await;
    assert!(
        b.bootstrap_code.is_none(),
        "the shared store is claimed already"
    );
    assert_eq!(
        whoami_status(&b, &op).await,
        200,
        "a token from A works on B"
    );

    // Owners for the later checks.
    let owner = a
        .http
        .post(a.at("/v1/owners"))
        .bearer_auth(&op)
        .json(&json!({"email": "alice@example.com"}))
        .send()
        .await
        .unwrap();
    let code = owner.json::<Value>().await.unwrap()["login_code"]
        .as_str()
        .unwrap()
        .to_string();
    let login: Value = b
        .http
        .post(b.at("/v1/login"))
        .json(&json!({"email": "alice@example.com", "code": code}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice = login["token"].as_str().unwrap().to_string();

    // Revoke on A; B refuses well within a second (NOTIFY).
    let jti = jti_of(&a, &op).await;
    let revoked = a
        .http
        .post(a.at("/v1/tokens/revoke"))
        .bearer_auth(&alice)
        .json(&json!({"jti": jti}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        revoked.status(),
        404,
        "alice cannot revoke the operator's token"
    );
    // A second credential of the operator (an existing owner gets no new
    // login code: that is account recovery, which would revoke `op`).
    let op2: Value = a
        .http
        .post(a.at("/v1/tokens"))
        .bearer_auth(&op)
        .json(&json!({"class": "api", "subject": "ops", "scope": "tokens:write"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let op2 = op2["token"].as_str().unwrap().to_string();
    let revoked = a
        .http
        .post(a.at("/v1/tokens/revoke"))
        .bearer_auth(&op2)
        .json(&json!({"jti": jti}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        revoked.json::<Value>().await.unwrap(),
        json!({"revoked": 1})
    );
    assert_eq!(
        whoami_status(&a, &op).await,
        401,
        "the revoking replica at once"
    );
    until_status(&b, &op, 401, Duration::from_secs(3)).await;

    // B loses its database: it fails closed once its view is stale.
    assert_eq!(whoami_status(&b, &alice).await, 200);
    relay.cut();
    until_status(&b, &alice, 503, Duration::from_secs(15)).await;
    let ready = b.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert_eq!(
        whoami_status(&a, &alice).await,
        200,
        "A still sees the database"
    );

    // The database comes back: B recovers by itself.
    relay.restore();
    until_status(&b, &alice, 200, Duration::from_secs(20)).await;
    assert_eq!(
        whoami_status(&b, &op).await,
        401,
        "still revoked after recovery"
    );
    b.stop_cleanly().await;
    a.stop_cleanly().await;
}
