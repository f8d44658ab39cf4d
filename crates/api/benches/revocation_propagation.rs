//! Revocation propagation between two replicas on one PostgreSQL: from the
//! revoke committed on A to B's view refusing the token, 200 times.
//! Needs PostgreSQL (GATEHOUSE_TEST_DATABASE_URL, default local).
//! `cargo bench -p gatehouse-api --bench revocation_propagation`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_api::config::Config;
use gatehouse_api::server::start;
use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::clock::{Clock, SystemClock};
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::master_key::encode_master_key;
use gatehouse_domain::token::Claims;
use gatehouse_domain::CredentialClass;
use gatehouse_store::RevocationKind;

async fn replica(url: &str, key: &str) -> gatehouse_api::server::Running {
    let dir = tempfile::tempdir().unwrap().keep();
    let env: BTreeMap<String, String> = [
        ("GATEHOUSE_LISTEN", "127.0.0.1:0".to_string()),
        ("GATEHOUSE_EGRESS_LISTEN", "127.0.0.1:0".to_string()),
        ("GATEHOUSE_DATA_DIR", dir.display().to_string()),
        ("GATEHOUSE_DATABASE_URL", url.to_string()),
        ("GATEHOUSE_MASTER_KEY", key.to_string()),
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

#[tokio::main]
async fn main() {
    let url = gatehouse_store::test_support::fresh_postgres_url().await;
    let key = encode_master_key(&SymmetricKey::generate())
        .trim()
        .to_string();
    let a = replica(&url, &key).await;
    let b = replica(&url, &key).await;
    let now = SystemClock.now();
    let mut from_call = Vec::new();
    let mut from_return = Vec::new();
    for i in 0..200 {
        let claims = Claims {
            iss: "gatehouse".into(),
            aud: "gatehouse".into(),
            sub: format!("bench-{i}"),
            owner: "bench@example.org".into(),
            cls: CredentialClass::Agent,
            jti: gatehouse_domain::codes::random_id(),
            iat: now,
            nbf: now,
            exp: now + 900,
            scope: String::new(),
        };
        let kind = RevocationKind::Jti {
            jti: claims.jti.clone(),
        };
        // The commit happens inside the call: time from its start (upper
        // bound) and from its return (lower bound; B may have it already).
        let called = Instant::now();
        let event = AuditEvent::new("token.revoke", "ok");
        a.state
            .store
            .revoke(kind, now, now + 900, event, now)
            .await
            .unwrap();
        let returned = Instant::now();
        let view = &b.state.auth.revocations;
        while !view.covers(&claims) {
            assert!(
                called.elapsed() < Duration::from_secs(5),
                "revocation {i} never reached B"
            );
            tokio::task::yield_now().await;
        }
        let seen = Instant::now();
        from_call.push(seen - called);
        from_return.push(seen.saturating_duration_since(returned));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("revocation propagation A→B over 200 revocations (NOTIFY payload):");
    for (label, mut v) in [
        ("from the start of the revoke call on A", from_call),
        ("from the return of the revoke call on A", from_return),
    ] {
        v.sort();
        let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "  {label:<42} p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            v[v.len() - 1]
        );
    }
    println!("targets: p50 <= 1 ms, p99 <= 5 ms");
    let _ = a.stop().await;
    let _ = b.stop().await;
}
