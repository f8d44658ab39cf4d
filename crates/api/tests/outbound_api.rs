//! Gatehouse's own outbound requests (SPEC §12, §9) through the real
//! server: a hook's `forward_to` is an outbound target like any other,
//! refused when saved and again at every delivery, never Gatehouse's own
//! listeners whatever the exceptions say; a forwarded delivery carries the
//! provider's headers only. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use support::{server_with, server_with_file, Engine, TestServer};

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/in",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push((headers, body));
                "received"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/in"), seen)
}

/// A loopback port nothing listens on right now (the server takes it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sign(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn new_hook(
    s: &TestServer,
    token: &str,
    provider: &str,
    secret: &str,
    to: &str,
) -> (u16, Value) {
    s.json(
        Method::POST,
        "/v1/hooks",
        Some(token),
        Some(json!({"provider": provider, "secret": secret, "forward_to": to})),
    )
    .await
}

async fn audit_outcomes(s: &TestServer, operator: &str, action: &str) -> Vec<String> {
    let (_, audit) = s
        .json(Method::GET, "/v1/audit?limit=1000", Some(operator), None)
        .await;
    audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == action)
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect()
}

/// Audit rows written off the request path: polled, bounded.
async fn wait_for_outcome(s: &TestServer, operator: &str, action: &str, outcome: &str) {
    for _ in 0..100 {
        if audit_outcomes(s, operator, action)
            .await
            .iter()
            .any(|o| o == outcome)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no {action} {outcome} in the audit log");
}

async fn forward_to_is_refused_when_saved_and_says_why(engine: Engine) {
    let s = server_with(engine, &[]).await;
    let op = s.claim("op@x.org").await;
    for (to, reason) in [
        ("http://127.0.0.1:8270/v1/tokens", "ssrf"),
        ("http://2130706433/v1/tokens", "ssrf"),
        ("http://[::ffff:7f00:1]/", "ssrf"),
        ("http://169.254.169.254/latest/meta-data/", "ssrf"),
        ("http://localhost/", "ssrf"),
        ("http://metadata.localhost/", "ssrf"),
        ("https://example.com:8443/in", "port"),
    ] {
        let (status, body) = new_hook(&s, &op, "github", "k", to).await;
        assert_eq!(status, 400, "{to}: {body}");
        assert_eq!(body["error"]["code"], "forward_to_refused", "{to}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(reason),
            "{to}: {body}"
        );
    }
    let (_, hooks) = s.json(Method::GET, "/v1/hooks", Some(&op), None).await;
    assert_eq!(hooks, json!([]), "nothing was saved");
}

/// The seed attack: an owner points a hook at Gatehouse's own API, signs
/// a delivery carrying the operator's identity header, and would read the
/// answer of `POST /v1/tokens`. Even with loopback let through (as a test
/// or split-horizon setup does), the own-listener rule holds.
async fn a_hook_aimed_at_gatehouse_itself_is_refused_when_saved_and_at_delivery(engine: Engine) {
    let api_port = free_port();
    let port = api_port.to_string();
    let s = server_with(
        engine,
        &[
            ("GATEHOUSE_LISTEN", &format!("127.0.0.1:{port}")),
            ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8"),
            ("GATEHOUSE_EGRESS_STATIC_HOSTS", "gatehouse.test=127.0.0.1"),
            ("GATEHOUSE_EGRESS_ALLOWED_PORTS", &port),
            ("GATEHOUSE_IDENTITY_TRUSTED_PROXY_CIDRS", "127.0.0.0/8"),
            ("GATEHOUSE_IDENTITY_HEADER", "X-Forwarded-Email"),
        ],
    )
    .await;
    let op = s.claim("op@x.org").await;
    let mallory = s.owner(&op, "mallory@x.org").await;
    let target = format!("http://127.0.0.1:{api_port}/v1/tokens");
    for to in [
        target.clone(),
        format!("http://gatehouse.test:{api_port}/v1/tokens"),
        format!("http://[::ffff:127.0.0.1]:{api_port}/v1/tokens"),
        format!("http://0x7f.1:{api_port}/v1/tokens"),
    ] {
        let (status, body) = new_hook(&s, &mallory, "generic_hmac_sha256", "k", &to).await;
        assert_eq!(status, 400, "{to}: {body}");
        assert_eq!(body["error"]["code"], "forward_to_refused");
        assert!(body.to_string().contains("own_listener"), "{to}: {body}");
    }

    // A hook saved before the check existed: delivery checks it again.
    let st = s.state();
    let owner = gatehouse_domain::Email::parse("mallory@x.org").unwrap();
    let key = st.data_key(&owner).await.unwrap().unwrap();
    let id = "legacyhook0001".to_string();
    let hook = gatehouse_store::HookRecord {
        id: id.clone(),
        owner: owner.clone(),
        provider: "generic_hmac_sha256".into(),
        sealed: gatehouse_domain::crypto::seal(
            &key,
            gatehouse_domain::crypto::Purpose::HookSecret,
            &[owner.as_str(), &id],
            b"k",
        ),
        forward_to: target,
        created_at: st.now(),
    };
    st.store
        .create_hook(
            &hook,
            gatehouse_domain::audit::AuditEvent::new("hook.create", "ok"),
            st.now(),
        )
        .await
        .unwrap();
    let body = br#"{"class":"api","scope":"tokens:write approval:bypass","ttl_seconds":3600}"#;
    let r = s
        .client
        .post(format!("{}/hooks/{id}", s.url))
        .header("content-type", "application/json")
        .header("x-signature", sign(b"k", body))
        .header("x-forwarded-email", "op@x.org")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 502);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "bad_gateway", "{answer}");
    assert!(answer.to_string().contains("own_listener"), "{answer}");
    assert!(!answer.to_string().contains("token\""), "{answer}");
    let delivered = audit_outcomes(&s, &op, "hook.deliver").await;
    assert!(
        delivered.contains(&"error:forward_refused:own_listener".to_string()),
        "{delivered:?}"
    );
    wait_for_outcome(&s, &op, "outbound.refused", "denied:own_listener").await;
    let (_, tokens) = s.json(Method::GET, "/v1/tokens", Some(&op), None).await;
    assert!(
        tokens
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["class"] == "session"),
        "no token was minted: {tokens}"
    );
}

async fn a_forwarded_delivery_carries_only_the_providers_headers(engine: Engine) {
    let (to, seen) = receiver().await;
    let port = reqwest::Url::parse(&to)
        .unwrap()
        .port()
        .unwrap()
        .to_string();
    let s = server_with(
        engine,
        &[
            ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8"),
            ("GATEHOUSE_EGRESS_ALLOWED_PORTS", &port),
            ("GATEHOUSE_IDENTITY_HEADER", "X-Forwarded-Email"),
            ("GATEHOUSE_IDENTITY_TRUSTED_PROXY_CIDRS", "10.0.0.0/8"),
        ],
    )
    .await;
    let op = s.claim("op@x.org").await;
    let (status, body) = new_hook(&s, &op, "github", "It's a Secret to Everybody", &to).await;
    assert_eq!(status, 201, "{body}");
    let id = body["hook_id"].as_str().unwrap();
    let payload = b"Hello, World!";
    let r = s
        .client
        .post(format!("{}/hooks/{id}", s.url))
        .header(
            "x-hub-signature-256",
            sign(b"It's a Secret to Everybody", payload),
        )
        .header("x-github-event", "push")
        .header("content-type", "application/json")
        .header("authorization", "Bearer op-session")
        .header("cookie", "gatehouse_session=op-session")
        .header("proxy-authorization", "Basic eDp5")
        .header("forwarded", "for=10.0.0.1")
        .header("x-forwarded-for", "10.0.0.1")
        .header("x-forwarded-email", "op@x.org")
        .header("x-forwarded-host", "gatehouse.internal")
        .header("x-something-else", "1")
        .body(payload.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    assert_eq!(&body[..], payload);
    assert_eq!(headers["x-gatehouse-verified"], "github");
    assert_eq!(headers["x-github-event"], "push");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.contains_key("x-hub-signature-256"));
    for never in [
        "authorization",
        "cookie",
        "proxy-authorization",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-email",
        "x-forwarded-host",
        "x-something-else",
    ] {
        assert!(!headers.contains_key(never), "{never} was forwarded");
    }
}

/// An upstream driver's `base_url` is the operator's: any port, private
/// ranges through the exceptions, but never Gatehouse's own listener.
async fn an_upstream_aimed_at_gatehouse_itself_is_never_called(engine: Engine) {
    let api_port = free_port();
    let file = format!(
        "[[upstream]]\nname = \"dbx\"\nowner = \"op@x.org\"\ndriver = \"databricks\"\n\
         base_url = \"http://127.0.0.1:{api_port}/\"\n\n\
         [egress]\nallow_private_cidrs = [\"127.0.0.0/8\"]\n"
    );
    let s = server_with_file(
        engine,
        &[("GATEHOUSE_LISTEN", &format!("127.0.0.1:{api_port}"))],
        Some(&file),
    )
    .await;
    let op = s.claim("op@x.org").await;
    let (status, body) = s
        .json(
            Method::PUT,
            "/v1/upstreams/dbx/credential",
            Some(&op),
            Some(json!({"token": "dapi-pasted"})),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    wait_for_outcome(&s, &op, "outbound.refused", "denied:own_listener").await;
}

/// `approvals.notify_url` is the operator's: loopback let through, yet
/// Gatehouse never posts to its own API.
async fn approval_notifications_never_reach_gatehouse_itself(engine: Engine) {
    let api_port = free_port();
    let s = server_with(
        engine,
        &[
            ("GATEHOUSE_LISTEN", &format!("127.0.0.1:{api_port}")),
            ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8"),
            (
                "GATEHOUSE_APPROVALS_NOTIFY_URL",
                &format!("http://127.0.0.1:{api_port}/v1/tokens"),
            ),
        ],
    )
    .await;
    let op = s.claim("op@x.org").await;
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(&op),
            Some(json!({"name": "bot"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(&op),
            Some(json!({"class": "agent", "subject": "bot", "scope": "secrets:write"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let bot = body["token"].as_str().unwrap();
    let (status, body) = s
        .json(
            Method::PUT,
            "/v1/secrets/DEPLOY_KEY",
            Some(bot),
            Some(json!({"value": "v", "allowed_hosts": ["api.github.com"]})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    wait_for_outcome(&s, &op, "outbound.refused", "denied:own_listener").await;
}

on_both_engines!(
    approval_notifications_never_reach_gatehouse_itself,
    forward_to_is_refused_when_saved_and_says_why,
    a_hook_aimed_at_gatehouse_itself_is_refused_when_saved_and_at_delivery,
    a_forwarded_delivery_carries_only_the_providers_headers,
    an_upstream_aimed_at_gatehouse_itself_is_never_called,
);
