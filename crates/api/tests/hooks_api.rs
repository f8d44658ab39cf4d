//! Inbound webhooks end to end: a real server, a real receiver on a
//! loopback port, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use support::{server_with, Engine, NowForTest, TestServer};

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver that records every delivery and answers 200 "received".
async fn receiver() -> (String, Seen) {
    receiver_at("127.0.0.1:0".parse().unwrap()).await
}

/// [`receiver`] on a given address.
async fn receiver_at(at: std::net::SocketAddr) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/in",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push((headers, body));
                ([("content-type", "text/plain")], "received")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(at).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/in"), seen)
}

/// A server whose outbound client may reach loopback receivers on `port`
/// (`forward_to` is an outbound target: internal ranges and ports outside
/// `egress.allowed_ports` are refused unless the operator says so).
async fn server_reaching(engine: Engine, port: u16) -> TestServer {
    server_with(
        engine,
        &[
            ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8"),
            ("GATEHOUSE_EGRESS_ALLOWED_PORTS", &port.to_string()),
        ],
    )
    .await
}

fn port_of(url: &str) -> u16 {
    reqwest::Url::parse(url).unwrap().port().unwrap()
}

fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

async fn hook(
    s: &TestServer,
    token: &str,
    provider: &str,
    secret: &str,
    forward_to: &str,
) -> String {
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/hooks",
            Some(token),
            Some(json!({"provider": provider, "secret": secret, "forward_to": forward_to})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/hooks/{}", body["hook_id"].as_str().unwrap())));
    body["hook_id"].as_str().unwrap().to_string()
}

async fn deliver(
    s: &TestServer,
    id: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut req = s
        .client
        .post(format!("{}/hooks/{id}", s.url))
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn github_deliveries_are_verified_before_they_are_forwarded(engine: Engine) {
    let (to, seen) = receiver().await;
    let s = server_reaching(engine, port_of(&to)).await;
    let op = s.claim("op@x.org").await;
    let id = hook(&s, &op, "github", "It's a Secret to Everybody", &to).await;
    let good =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".to_string();
    let (status, answer) = deliver(
        &s,
        &id,
        &[
            ("X-Hub-Signature-256", good.clone()),
            ("X-GitHub-Event", "push".into()),
        ],
        b"Hello, World!",
    )
    .await;
    assert_eq!((status, answer.as_str()), (200, "received"));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (headers, body) = &seen[0];
        assert_eq!(&body[..], b"Hello, World!");
        assert_eq!(headers["x-gatehouse-verified"], "github");
        assert_eq!(headers["x-github-event"], "push");
        assert_eq!(headers["x-hub-signature-256"], good.as_str());
    }
    for (headers, body) in [
        (
            vec![("X-Hub-Signature-256", good.clone())],
            &b"Hello, World?"[..],
        ),
        (
            vec![("X-Hub-Signature-256", good[..20].to_string())],
            &b"Hello, World!"[..],
        ),
        (
            vec![("X-Hub-Signature", "sha1=01234567890123456789".to_string())],
            &b"Hello, World!"[..],
        ),
        (vec![], &b"Hello, World!"[..]),
    ] {
        let (status, answer) = deliver(&s, &id, &headers, body).await;
        assert_eq!(status, 401, "{answer}");
        assert!(!answer.contains("Secret"), "{answer}");
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "nothing refused was forwarded"
    );
    let (_, audit) = s
        .json(Method::GET, "/v1/audit?limit=1000", Some(&op), None)
        .await;
    let outcomes: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "hook.deliver")
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes.len(), 5);
    assert!(
        outcomes.contains(&"ok".to_string()) && outcomes.contains(&"denied:sha1_only".to_string()),
        "{outcomes:?}"
    );
}

async fn slack_deliveries_are_fresh_unreplayed_and_answer_url_verification(engine: Engine) {
    let (to, seen) = receiver().await;
    let s = server_reaching(engine, port_of(&to)).await;
    let op = s.claim("op@x.org").await;
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let id = hook(&s, &op, "slack", secret, &to).await;
    let signed = |ts: i64, body: &str| {
        vec![
            ("X-Slack-Request-Timestamp", ts.to_string()),
            (
                "X-Slack-Signature",
                format!(
                    "v0={}",
                    hmac_hex(secret.as_bytes(), format!("v0:{ts}:{body}").as_bytes())
                ),
            ),
        ]
    };
    let now = s.clock.now_for_test();
    let body = "token=x&command=%2Fdeploy";
    assert_eq!(
        deliver(&s, &id, &signed(now, body), body.as_bytes())
            .await
            .0,
        200
    );
    let (status, answer) = deliver(&s, &id, &signed(now, body), body.as_bytes()).await;
    assert_eq!(status, 401, "a replay is refused: {answer}");
    assert!(answer.contains("replayed"));
    for ts in [now - 301, now + 301] {
        let (status, _) = deliver(&s, &id, &signed(ts, "x=1"), b"x=1").await;
        assert_eq!(status, 401, "timestamp {ts} vs {now}");
    }
    let challenge = r#"{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#;
    let (status, answer) =
        deliver(&s, &id, &signed(now + 1, challenge), challenge.as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap()["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    let forged = signed(now + 2, "other");
    assert_eq!(
        deliver(&s, &id, &forged, challenge.as_bytes()).await.0,
        401,
        "url_verification only after verification"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "only the first delivery reached the receiver"
    );
}

async fn stripe_accepts_any_matching_v1_and_refuses_replays(engine: Engine) {
    let (to, seen) = receiver().await;
    let s = server_reaching(engine, port_of(&to)).await;
    let op = s.claim("op@x.org").await;
    let id = hook(&s, &op, "stripe", "whsec_test", &to).await;
    let now = s.clock.now_for_test();
    let body = r#"{"id":"evt_1","type":"charge.succeeded"}"#;
    let sig = hmac_hex(b"whsec_test", format!("{now}.{body}").as_bytes());
    let header = format!("t={now},v1={},v1={sig},v0=ignored", "0".repeat(64));
    assert_eq!(
        deliver(
            &s,
            &id,
            &[("Stripe-Signature", header.clone())],
            body.as_bytes()
        )
        .await
        .0,
        200
    );
    assert_eq!(
        deliver(&s, &id, &[("Stripe-Signature", header)], body.as_bytes())
            .await
            .0,
        401
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

async fn a_failed_forward_is_a_502_and_the_retry_is_accepted(engine: Engine) {
    // Nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let s = server_reaching(engine, closed.port()).await;
    let op = s.claim("op@x.org").await;
    let id = hook(
        &s,
        &op,
        "stripe",
        "whsec_test",
        &format!("http://{closed}/in"),
    )
    .await;
    let now = s.clock.now_for_test();
    let body = "{}";
    let header = format!(
        "t={now},v1={}",
        hmac_hex(b"whsec_test", format!("{now}.{body}").as_bytes())
    );
    let (status, answer) = deliver(
        &s,
        &id,
        &[("Stripe-Signature", header.clone())],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 502, "{answer}");
    let (status, _) = deliver(
        &s,
        &id,
        &[("Stripe-Signature", header.clone())],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 502, "the retry is not taken for a replay");
    // The receiver comes up: the provider's retry of the same delivery is
    // accepted and forwarded, once; after that it is a replay.
    let (_, seen) = receiver_at(closed).await;
    let (status, answer) = deliver(
        &s,
        &id,
        &[("Stripe-Signature", header.clone())],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1, body.as_bytes());
    }
    let (status, _) = deliver(&s, &id, &[("Stripe-Signature", header)], body.as_bytes()).await;
    assert_eq!(status, 401, "a forwarded delivery is not taken twice");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

async fn hooks_are_managed_by_their_owner_and_never_show_secrets(engine: Engine) {
    let (to, _) = receiver().await;
    let s = server_reaching(engine, port_of(&to)).await;
    let op = s.claim("op@x.org").await;
    let alice = s.owner(&op, "alice@x.org").await;
    let id = hook(&s, &op, "telegram", "tg-secret-token", &to).await;
    let (_, list) = s.json(Method::GET, "/v1/hooks", Some(&op), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("tg-secret-token"));
    let (_, theirs) = s.json(Method::GET, "/v1/hooks", Some(&alice), None).await;
    assert_eq!(theirs, json!([]));
    assert_eq!(
        s.json(
            Method::DELETE,
            &format!("/v1/hooks/{id}"),
            Some(&alice),
            None
        )
        .await
        .0,
        404
    );
    for (body, why) in [
        (
            json!({"provider": "gitlab", "secret": "x", "forward_to": to}),
            "provider",
        ),
        (
            json!({"provider": "github", "secret": "x", "forward_to": "ftp://x/"}),
            "forward_to",
        ),
        (
            json!({"provider": "github", "secret": "x", "forward_to": "http://u:p@x/"}),
            "forward_to",
        ),
        (
            json!({"provider": "discord", "secret": "not-hex", "forward_to": to}),
            "secret",
        ),
        (
            json!({"provider": "github", "secret": "", "forward_to": to}),
            "secret",
        ),
    ] {
        let (status, answer) = s
            .json(Method::POST, "/v1/hooks", Some(&op), Some(body))
            .await;
        assert_eq!(status, 400, "{why}: {answer}");
    }
    assert_eq!(
        s.json(Method::DELETE, &format!("/v1/hooks/{id}"), Some(&op), None)
            .await
            .0,
        204
    );
    let (status, _) = deliver(
        &s,
        &id,
        &[("X-Telegram-Bot-Api-Secret-Token", "tg-secret-token".into())],
        b"{}",
    )
    .await;
    assert_eq!(status, 404, "a deleted hook receives nothing");
}

on_both_engines!(
    github_deliveries_are_verified_before_they_are_forwarded,
    slack_deliveries_are_fresh_unreplayed_and_answer_url_verification,
    stripe_accepts_any_matching_v1_and_refuses_replays,
    a_failed_forward_is_a_502_and_the_retry_is_accepted,
    hooks_are_managed_by_their_owner_and_never_show_secrets,
);
