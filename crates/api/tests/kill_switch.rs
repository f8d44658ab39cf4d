//! The kill switch covers everything issued before it (SPEC §3), whatever
//! the second boundaries, on one node and across replicas; a token issued
//! after it stays valid. The test clock does not move: every step below
//! happens within one second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::{server, Engine, TestServer};

async fn whoami(s: &TestServer, token: &str) -> u16 {
    s.json(Method::GET, "/v1/auth/whoami", Some(token), None)
        .await
        .0
}

async fn revoke(s: &TestServer, token: &str, body: Value) -> Value {
    let (status, reply) = s
        .json(Method::POST, "/v1/tokens/revoke", Some(token), Some(body))
        .await;
    assert_eq!(status, 200, "{reply}");
    reply
}

async fn mint_agent(s: &TestServer, session: &str, name: &str) -> String {
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(session),
            Some(json!({ "class": "agent", "subject": name })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// The operator recovers alice and she logs in again: a token issued
/// after every revocation above.
async fn log_in_again(s: &TestServer, op: &str) -> String {
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/owners/alice@x.org/recover",
            Some(op),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({ "email": "alice@x.org", "code": body["login_code"] })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

async fn an_owner_revocation_covers_a_token_minted_in_the_second_of_a_subject_revocation(
    engine: Engine,
) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let alice = s.owner(&op, "alice@x.org").await;
    s.json(
        Method::POST,
        "/v1/agents",
        Some(&alice),
        Some(json!({ "name": "c" })),
    )
    .await;
    revoke(&s, &alice, json!({ "subject": "c" })).await;
    let token = mint_agent(&s, &alice, "c").await;
    assert_eq!(whoami(&s, &token).await, 200, "minted after: alive");
    let reply = revoke(&s, &op, json!({ "owner": "alice@x.org" })).await;
    assert!(reply["revoked"]["all-before"].is_i64(), "{reply}");
    assert_eq!(
        whoami(&s, &token).await,
        401,
        "issued before the owner revocation: covered"
    );
    assert_eq!(whoami(&s, &alice).await, 401);

    // Issued after: alive, however many revocations share the second.
    let fresh = log_in_again(&s, &op).await;
    assert_eq!(whoami(&s, &fresh).await, 200);
    let again = mint_agent(&s, &fresh, "c").await;
    assert_eq!(whoami(&s, &again).await, 200);
    revoke(&s, &fresh, json!({ "subject": "c" })).await;
    assert_eq!(whoami(&s, &again).await, 401);
    assert_eq!(
        whoami(&s, &fresh).await,
        200,
        "a subject revocation spares the owner"
    );
}

/// Polls until `token` answers `want` on `s` (revocations reach other
/// replicas within a second); fails after 5 s.
async fn eventually(s: &TestServer, token: &str, want: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = whoami(s, token).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The same sequence split over two replicas of one PostgreSQL store.
#[tokio::test]
async fn an_owner_revocation_covers_a_token_minted_on_another_replica() {
    let a = server(Engine::Postgres).await;
    let op = a.claim("op@x.org").await;
    let b = a.replica().await;
    let alice = a.owner(&op, "alice@x.org").await;
    a.json(
        Method::POST,
        "/v1/agents",
        Some(&alice),
        Some(json!({ "name": "c" })),
    )
    .await;
    revoke(&a, &alice, json!({ "subject": "c" })).await;
    let token = mint_agent(&b, &alice, "c").await;
    eventually(&a, &token, 200).await;
    assert_eq!(whoami(&b, &token).await, 200, "minted after: alive");
    revoke(&a, &op, json!({ "owner": "alice@x.org" })).await;
    assert_eq!(whoami(&a, &token).await, 401);
    eventually(&b, &token, 401).await;
    // The view is fed by NOTIFY and by the store: it stays that way.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(whoami(&b, &token).await, 401);

    let fresh = log_in_again(&b, &op).await;
    let again = mint_agent(&b, &fresh, "c").await;
    for s in [&a, &b] {
        assert_eq!(whoami(s, &fresh).await, 200);
        assert_eq!(whoami(s, &again).await, 200);
    }
}

on_both_engines!(an_owner_revocation_covers_a_token_minted_in_the_second_of_a_subject_revocation,);
