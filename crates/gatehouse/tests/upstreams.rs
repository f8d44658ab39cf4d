//! Upstream credentials across processes (SPEC §8): the CLI handing over
//! a token on standard input, a server SIGKILLed at each step of a
//! rotation and restarted, and two replicas on one PostgreSQL sharing the
//! rotation. The fake Databricks API runs on the real clock here, with
//! rotation intervals of a few seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../api/tests/support/upstream.rs"]
mod fake_upstream;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_upstream::{FakeToken, FakeUpstream};
use gatehouse_domain::clock::{Clock, SystemClock};
use serde_json::{json, Value};
use support::{random_master_key, Sandbox, Server};

const OP: &str = "op@example.com";

fn config(fake: &FakeUpstream, rotate: i64, lifetime: i64) -> String {
    format!(
        "[[upstream]]\nname = \"dbx\"\nowner = \"{OP}\"\ndriver = \"databricks\"\nbase_url = \"{}\"\n\
         rotate_every_seconds = {rotate}\nlifetime_seconds = {lifetime}\n\n\
         [egress]\nallow_private_cidrs = [\"127.0.0.0/8\"]\n",
        fake.url
    )
}

async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server
        .http
        .request(method, server.at(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn status(server: &Server, token: &str) -> Value {
    let (code, body) = call(
        server,
        reqwest::Method::GET,
        "/v1/upstreams/dbx/status",
        token,
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    body
}

/// What a job granted `upstream.dbx` by value receives from `server`.
async fn agent_value(server: &Server, token: &str) -> String {
    let _ = call(
        server,
        reqwest::Method::POST,
        "/v1/agents",
        token,
        Some(json!({"name": "bot"})),
    )
    .await;
    let grant = json!({"agent": "bot", "ttl_seconds": 60,
        "grants": [{"env_var": "DATABRICKS_TOKEN", "secret": "upstream.dbx", "mode": "value"}]});
    let (code, job) = call(
        server,
        reqwest::Method::POST,
        "/v1/jobs",
        token,
        Some(grant),
    )
    .await;
    assert_eq!(code, 201, "{job}");
    let (code, creds) = call(
        server,
        reqwest::Method::GET,
        "/v1/job/credentials",
        job["job_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(code, 200, "{creds}");
    creds[0]["value"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_cli_reads_the_token_from_stdin_and_shows_status() {
    let fake = FakeUpstream::start(Arc::new(SystemClock)).await;
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.root().join("gatehouse.toml"),
        config(&fake, 600, 900),
    )
    .unwrap();
    let server = sandbox.serve().await;
    let op = server.claim_operator(OP).await;
    let pat = fake.seed_pat(OP);
    let cli = |args: &[&str]| {
        sandbox
            .cmd(args)
            .env("GATEHOUSE_URL", &server.url)
            .env("GATEHOUSE_TOKEN", &op)
    };

    let out = cli(&["upstream", "set-credential", "dbx"]).run().await;
    out.assert_refused();
    assert!(out.stderr.contains("no token on standard input"), "{out:?}");

    let out = cli(&["upstream", "set-credential", "dbx"])
        .stdin(&format!("{}\n", pat.value))
        .run()
        .await;
    out.assert_success();
    let shown: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["valid"], true, "{out:?}");
    assert!(fake.token(&pat.id).deleted_at.is_some());
    assert!(!out.stdout.contains(&pat.value));

    // Once is enough: a second paste while active is refused by the server.
    let again = fake.seed_pat(OP);
    let out = cli(&["upstream", "set-credential", "dbx"])
        .stdin(&again.value)
        .run()
        .await;
    out.assert_refused();
    assert!(out.stderr.contains("409"), "{out:?}");

    let out = cli(&["upstream", "status", "dbx"]).run().await;
    out.assert_success();
    assert!(out.stdout.contains("\"valid\": true"), "{out:?}");
    let out = cli(&["upstream", "status"]).run().await;
    out.assert_success();
    assert!(out.stdout.contains("\"name\": \"dbx\""), "{out:?}");
    let out = sandbox
        .cmd(&["upstream", "status"])
        .env("GATEHOUSE_URL", &server.url)
        .run()
        .await;
    out.assert_refused();
    assert!(out.stderr.contains("GATEHOUSE_TOKEN"), "{out:?}");
    let log = server.stop_cleanly().await;
    for t in fake.tokens() {
        assert!(!log.contains(&t.value), "a token value reached the log");
    }
}

/// Polls until nothing is in flight: no pending token, no queued
/// revocation, and exactly one known minted token live. Returns the
/// status and the current token.
async fn settled(
    server: &Server,
    token: &str,
    fake: &FakeUpstream,
    orphans: &[String],
) -> (Value, FakeToken) {
    let started = Instant::now();
    loop {
        let s = status(server, token).await;
        let live: Vec<FakeToken> = fake
            .live_minted()
            .into_iter()
            .filter(|t| !orphans.contains(&t.id))
            .collect();
        if s["valid"] == true
            && s["rotation_in_progress"] == false
            && s["pending_revokes"] == json!([])
            && live.len() == 1
            && s["token_id"] == live[0].id.as_str()
        {
            return (s, live[0].clone());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never settled: {s} live {live:?}\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_rotation_killed_at_any_step_recovers_with_one_working_token_and_nothing_leaked() {
    const LIFETIME: i64 = 30;
    let fake = FakeUpstream::start(Arc::new(SystemClock)).await;
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.root().join("gatehouse.toml"),
        config(&fake, 2, LIFETIME),
    )
    .unwrap();
    let serve = || {
        sandbox
            .cmd(&["serve"])
            .env("RUST_LOG", "debug")
            .start_server()
    };
    let mut server = serve().await;
    let op = server.claim_operator(OP).await;
    let pat = fake.seed_pat(OP);
    let (code, body) = call(
        &server,
        reqwest::Method::PUT,
        "/v1/upstreams/dbx/credential",
        &op,
        Some(json!({"token": pat.value})),
    )
    .await;
    assert_eq!(code, 200, "{body}");

    let mut logs = Vec::new();
    let mut orphans: Vec<String> = Vec::new();
    // create stalls after the upstream minted (Gatehouse never hears of
    // the token); Me with the new token stalls after it was persisted;
    // delete of the old token stalls after the switch.
    for step in ["/token/create", "/scim/v2/Me", "/token/delete"] {
        let before: Vec<String> = fake.tokens().into_iter().map(|t| t.id).collect();
        fake.stall_next(step);
        fake.wait_stalled(Duration::from_secs(20)).await;
        logs.push(server.kill());
        fake.release();
        let newest = fake.tokens().last().unwrap().id.clone();
        if step == "/token/create" {
            orphans.extend(
                fake.tokens()
                    .into_iter()
                    .filter(|t| !before.contains(&t.id))
                    .map(|t| t.id),
            );
            assert_eq!(orphans.len(), 1, "the stalled create minted one token");
        }
        server = serve().await;
        settled(&server, &op, &fake, &orphans).await;
        if step == "/scim/v2/Me" {
            // The persisted token whose check was cut short was finished
            // forward on restart, not thrown away.
            let (_, audit) = call(
                &server,
                reqwest::Method::GET,
                "/v1/audit?limit=1000",
                &op,
                None,
            )
            .await;
            let switched = audit.as_array().unwrap().iter().any(|r| {
                r["action"] == "upstream.rotate"
                    && r["target"] == format!("dbx:{newest}")
                    && r["outcome"] == "ok"
            });
            assert!(
                switched,
                "pending {newest} was not switched to after the restart"
            );
        }
        // Exactly one token in use, and it works: agents get it, the
        // upstream accepts it.
        // Read until no rotation lands between the reads (bounded), so the
        // equality is always checked.
        let mut tries = 0;
        let (current, value, again) = loop {
            let (s, current) = settled(&server, &op, &fake, &orphans).await;
            let value = agent_value(&server, &op).await;
            let again = status(&server, &op).await;
            if again["token_id"] == s["token_id"] {
                break (current, value, again);
            }
            tries += 1;
            assert!(
                tries < 20,
                "a rotation landed between every read after {step}"
            );
        };
        assert_eq!(value, current.value, "after {step}");
        let now = SystemClock.now();
        assert!(fake.by_value(&value).unwrap().live(now), "after {step}");
        // Every other token Gatehouse minted is revoked, or (the one it
        // never heard of) lapses within its lifetime.
        for t in fake.tokens().iter().filter(|t| t.minted_by_gatehouse()) {
            if t.id == current.id || t.id == again["token_id"].as_str().unwrap_or_default() {
                continue;
            }
            if orphans.contains(&t.id) {
                assert_eq!(t.expires_at, Some(t.created_at + LIFETIME));
            } else {
                assert!(
                    t.deleted_at.is_some() || !t.live(now),
                    "{t:?} still live after {step}"
                );
            }
        }
    }
    assert!(
        fake.token(&pat.id).deleted_at.is_some(),
        "the pasted token is revoked"
    );
    logs.push(server.kill());
    let log = logs.join("\n");
    for t in fake.tokens() {
        assert!(!log.contains(&t.value), "token {} reached a log", t.id);
    }
    assert!(
        log.contains("DEBUG"),
        "the logs were captured at debug level"
    );
}

#[tokio::test]
async fn two_replicas_rotate_once_per_interval_and_both_serve_the_new_token() {
    const ROTATE: i64 = 2;
    let url = gatehouse_store::test_support::fresh_postgres_url().await;
    let key = random_master_key();
    let fake = FakeUpstream::start(Arc::new(SystemClock)).await;
    let sandboxes = [Sandbox::new(), Sandbox::new()];
    for s in &sandboxes {
        std::fs::write(s.root().join("gatehouse.toml"), config(&fake, ROTATE, 30)).unwrap();
    }
    let replica = |sandbox: &Sandbox| {
        sandbox
            .cmd(&["serve"])
            .env("GATEHOUSE_DATABASE_URL", &url)
            .env("GATEHOUSE_MASTER_KEY", &key)
    };
    let a = replica(&sandboxes[0]).start_server().await;
    let op = a.claim_operator(OP).await;
    let b = replica(&sandboxes[1]).start_server().await;
    let pat = fake.seed_pat(OP);
    let (code, body) = call(
        &b,
        reqwest::Method::PUT,
        "/v1/upstreams/dbx/credential",
        &op,
        Some(json!({"token": pat.value})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let first_create = fake
        .calls()
        .iter()
        .find(|c| c.path.ends_with("/token/create"))
        .unwrap()
        .at;

    // Several intervals: both replicas tick every second, one rotates.
    let started = Instant::now();
    let mut seen_on_a = Vec::new();
    while started.elapsed() < Duration::from_secs(5 * ROTATE as u64 + 1) {
        // The other replica serves the token the rotating one minted. Read
        // until no rotation lands between the reads (bounded), so the
        // equality is always checked.
        let mut tries = 0;
        let (current, on_b) = loop {
            let (s, current) = settled(&a, &op, &fake, &[]).await;
            let on_b = agent_value(&b, &op).await;
            if status(&a, &op).await["token_id"] == s["token_id"] {
                break (current, on_b);
            }
            tries += 1;
            assert!(tries < 20, "a rotation landed between every read");
        };
        assert_eq!(on_b, current.value);
        seen_on_a.push(current.id);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    seen_on_a.dedup();
    assert!(seen_on_a.len() >= 3, "rotations seen: {seen_on_a:?}");

    // One mint per interval (bootstrap's included), never two at once.
    let creates: Vec<i64> = fake
        .calls()
        .iter()
        .filter(|c| c.path.ends_with("/token/create"))
        .map(|c| c.at)
        .collect();
    let last = *creates.last().unwrap();
    let intervals = (last - first_create) / ROTATE + 1;
    eprintln!(
        "measure: two replicas, {} mints over {intervals} intervals of {ROTATE} s",
        creates.len()
    );
    assert!(
        creates.len() as i64 <= intervals + 1,
        "{} mints over {intervals} intervals: {creates:?}",
        creates.len()
    );
    for pair in creates.windows(2) {
        assert!(
            pair[1] - pair[0] >= ROTATE - 1,
            "two mints too close: {creates:?}"
        );
    }
    assert!(
        fake.max_live_minted() <= 2,
        "overlap {}",
        fake.max_live_minted()
    );
    let log = [a.kill(), b.kill()].join("\n");
    for t in fake.tokens() {
        assert!(!log.contains(&t.value));
    }
}
