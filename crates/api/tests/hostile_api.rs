//! Hostile traffic through the real server: refused tokens from many
//! sources write a bounded number of audit rows in total (the rest are
//! counted in `/metrics`). On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{IpAddr, Ipv4Addr};

use gatehouse_api::rate_limit::{REFUSAL_AUDITS_PER_MINUTE, REFUSAL_AUDITS_PER_SOURCE};
use reqwest::Method;
use support::{server, Engine, TestServer};

async fn refusal_rows(s: &TestServer, op: &str) -> usize {
    let (_, audit) = s
        .json(Method::GET, "/v1/audit?limit=1000", Some(op), None)
        .await;
    audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "token.use")
        .count()
}

async fn refused_tokens_from_many_sources_write_a_bounded_number_of_audit_rows(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    // Each source stays within its own limit; together they exceed the
    // global budget by `extra` sources' worth.
    let per_source = REFUSAL_AUDITS_PER_SOURCE;
    let sources = REFUSAL_AUDITS_PER_MINUTE as usize / per_source + 8;
    let total = sources * per_source;
    for i in 0..sources {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 10 + i as u8));
        let client = reqwest::Client::builder()
            .local_address(source)
            .build()
            .unwrap();
        for n in 0..per_source {
            let r = client
                .get(format!("{}/v1/auth/whoami", s.url))
                .bearer_auth(format!("garbage.{i}.{n}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 401);
        }
    }
    let metrics = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let unaudited = total - REFUSAL_AUDITS_PER_MINUTE as usize;
    assert!(
        metrics.contains(&format!(
            "gatehouse_token_refusals_unaudited_total {unaudited}\n"
        )),
        "{metrics}"
    );
    // The audit writes are asynchronous: wait for the budget's worth.
    let mut rows = 0;
    for _ in 0..200 {
        rows = refusal_rows(&s, &op).await;
        if rows >= REFUSAL_AUDITS_PER_MINUTE as usize {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(rows, REFUSAL_AUDITS_PER_MINUTE as usize, "{total} refusals");
}

/// A valid token refused by route rules (here: an api token without
/// `audit:read`) is audited as `access.denied` under the same budget, so a
/// holder of any valid token cannot flood the audit chain.
async fn a_valid_token_refused_by_route_rules_writes_a_bounded_number_of_audit_rows(
    engine: Engine,
) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(&op),
            Some(serde_json::json!({ "class": "api", "subject": "ci", "scope": "jobs:read" })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let api = body["token"].as_str().unwrap().to_string();
    let attempts = REFUSAL_AUDITS_PER_SOURCE * 3;
    for _ in 0..attempts {
        let (status, body) = s.json(Method::GET, "/v1/audit", Some(&api), None).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "insufficient_scope");
    }
    let (_, audit) = s
        .json(Method::GET, "/v1/audit?limit=1000", Some(&op), None)
        .await;
    let denied = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "access.denied")
        .count();
    assert_eq!(denied, REFUSAL_AUDITS_PER_SOURCE, "{attempts} refusals");
    let metrics = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let unaudited = attempts - REFUSAL_AUDITS_PER_SOURCE;
    assert!(
        metrics.contains(&format!(
            "gatehouse_access_denials_unaudited_total {unaudited}\n"
        )),
        "{metrics}"
    );
}

on_both_engines!(
    refused_tokens_from_many_sources_write_a_bounded_number_of_audit_rows,
    a_valid_token_refused_by_route_rules_writes_a_bounded_number_of_audit_rows,
);
