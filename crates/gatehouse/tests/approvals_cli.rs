//! Approvals through the real binary: the `gatehouse approvals` inbox for
//! humans, and two `gatehouse serve` processes on one PostgreSQL that both
//! see an approval and still run it once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{random_master_key, Sandbox, Server};

async fn post(server: &Server, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = server
        .http
        .post(server.at(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Registers agent "bot" and returns an agent token with `secrets:write`.
async fn agent_token(server: &Server, session: &str) -> String {
    let (status, _) = post(server, session, "/v1/agents", json!({ "name": "bot" })).await;
    assert_eq!(status, 201);
    let (status, body) = post(
        server,
        session,
        "/v1/tokens",
        json!({ "class": "agent", "subject": "bot", "scope": "secrets:write" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// The agent asks to write `name`; returns the approval id.
async fn held_write(server: &Server, agent: &str, name: &str) -> String {
    let r = server.put_secret(agent, name, "agent-chosen-value").await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    body["approval_id"].as_str().unwrap().to_string()
}

async fn audit_count(server: &Server, session: &str, action: &str) -> usize {
    let log: Value = server
        .get_with_token("/v1/audit?since_seq=0&limit=1000", session)
        .await
        .json()
        .await
        .unwrap();
    log.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == action)
        .count()
}

/// Completed approval sweeper passes of `server` (`/metrics`).
async fn sweeps(server: &Server) -> u64 {
    let text = server.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("gatehouse_approval_sweeps_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sweep counter in {text}"))
}

/// Polls until `server` has completed `at_least` sweeper passes; fails
/// the test after a bound.
async fn until_swept(server: &Server, at_least: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n = sweeps(server).await;
        if n >= at_least {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {n} sweeps, waiting for {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn approvals_cli_lists_approves_and_denies_for_a_human() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    let op = server.claim_operator("op@example.com").await;
    let bot = agent_token(&server, &op).await;
    let first = held_write(&server, &bot, "FIRST").await;
    let second = held_write(&server, &bot, "SECOND").await;
    let cli = |args: &[&str], token: &str| {
        sandbox
            .cmd(args)
            .env("GATEHOUSE_URL", &server.url)
            .env("GATEHOUSE_TOKEN", token)
    };

    let out = cli(&["approvals", "list"], &op).run().await;
    out.assert_success();
    assert!(
        out.stdout.contains(&first) && out.stdout.contains(&second),
        "{out:?}"
    );
    assert!(out.stdout.contains("secret.write"));
    assert!(!out.stdout.contains("agent-chosen-value"));

    let out = cli(&["approvals", "approve", &first, "--reason", "ok"], &op)
        .run()
        .await;
    out.assert_success();
    assert!(out.stdout.contains("executed"), "{out:?}");
    let out = cli(&["approvals", "deny", &second], &op).run().await;
    out.assert_success();
    assert!(out.stdout.contains("denied"), "{out:?}");
    let out = cli(&["approvals", "list", "--status", "all", "--json"], &op)
        .run()
        .await;
    out.assert_success();
    let statuses: Vec<String> = out
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&"executed".to_string()) && statuses.contains(&"denied".to_string()));

    // The agent's own token cannot decide, and the CLI says why.
    let third = held_write(&server, &bot, "THIRD").await;
    let out = cli(&["approvals", "approve", &third], &bot).run().await;
    out.assert_refused();
    assert!(out.stderr.contains("403"), "{out:?}");
    assert!(!out.stderr.contains(&bot), "the CLI echoed the token");
    // A decided approval is a conflict, not a silent success.
    let out = cli(&["approvals", "approve", &first], &op).run().await;
    out.assert_refused();
    assert!(out.stderr.contains("409"), "{out:?}");
    // No token: a clear message, no request.
    let out = sandbox
        .cmd(&["approvals", "list"])
        .env("GATEHOUSE_URL", &server.url)
        .run()
        .await;
    out.assert_refused();
    assert!(out.stderr.contains("GATEHOUSE_TOKEN"), "{out:?}");
}

#[tokio::test]
async fn two_server_processes_on_one_postgres_run_an_approval_once() {
    let url = gatehouse_store::test_support::fresh_postgres_url().await;
    let key = random_master_key();
    let sandbox_a = Sandbox::new();
    let sandbox_b = Sandbox::new();
    let replica = |sandbox: &Sandbox| {
        sandbox
            .cmd(&["serve"])
            .env("GATEHOUSE_DATABASE_URL", &url)
            .env("GATEHOUSE_MASTER_KEY", &key)
    };
    let a = replica(&sandbox_a).start_server().await;
    let op = a.claim_operator("op@example.com").await;
    let b = replica(&sandbox_b).start_server().await;
    let (status, created) = post(
        &a,
        &op,
        "/v1/owners",
        json!({ "email": "alice@example.com" }),
    )
    .await;
    assert_eq!(status, 201);
    let (status, login) = post(
        &b,
        "",
        "/v1/login",
        json!({ "email": "alice@example.com", "code": created["login_code"] }),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let alice = login["token"].as_str().unwrap().to_string();
    let bot = agent_token(&a, &alice).await;

    for round in 0..3 {
        let name = format!("RACED_{round}");
        let id = held_write(&a, &bot, &name).await;
        let path = format!("/v1/approvals/{id}/decision");
        let body = json!({ "decision": "approve" });
        let (on_a, on_b) = tokio::join!(
            post(&a, &alice, &path, body.clone()),
            post(&b, &op, &path, body.clone())
        );
        let mut statuses = [on_a.0, on_b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{on_a:?} {on_b:?}");
    }
    // Both replicas' sweepers see every approved request too: count only
    // once each has run a whole pass after the decisions.
    let (on_a, on_b) = (sweeps(&a).await, sweeps(&b).await);
    until_swept(&a, on_a + 2).await;
    until_swept(&b, on_b + 2).await;
    assert_eq!(audit_count(&b, &op, "secret.write").await, 3);
    assert_eq!(audit_count(&a, &op, "approval.execute").await, 3);
    let listed: Value = b
        .get_with_token("/v1/approvals?status=executed", &alice)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
}
