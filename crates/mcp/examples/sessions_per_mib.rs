//! How many idle `/mcp` sessions a server holds per MiB of memory.
//!
//! Starts a server in this process (SQLite in a temporary directory),
//! opens N sessions (`initialize` + `notifications/initialized`, each with
//! the same agent token, then left idle), and reports the growth of this
//! process's resident set (`VmRSS`, /proc/self/status) against a baseline
//! read in the same run after a warm-up session. A measurement, not a
//! test: `cargo run --release -p gatehouse-mcp --example sessions_per_mib -- 2000`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use gatehouse_api::config::Config;
use gatehouse_domain::clock::SystemClock;
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::master_key::encode_master_key;
use serde_json::{json, Value};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn open_session(http: &reqwest::Client, url: &str, token: &str) -> String {
    let r = http
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "bench", "version": "0"}}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text().await;
    let r = http
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    id
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let mut env = BTreeMap::new();
    env.insert("GATEHOUSE_LISTEN".to_string(), "127.0.0.1:0".to_string());
    env.insert("GATEHOUSE_EGRESS_LISTEN".into(), "127.0.0.1:0".into());
    env.insert(
        "GATEHOUSE_DATA_DIR".into(),
        dir.path().display().to_string(),
    );
    env.insert(
        "GATEHOUSE_DATABASE_URL".into(),
        gatehouse_store::test_support::sqlite_url(dir.path()),
    );
    env.insert(
        "GATEHOUSE_MASTER_KEY".into(),
        encode_master_key(&SymmetricKey::generate())
            .trim()
            .to_string(),
    );
    let config = Config::load(None, &env).unwrap();
    let running = gatehouse_api::server::start_with(
        config,
        Arc::new(SystemClock),
        std::future::pending(),
        gatehouse_mcp::routes(),
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let claim: Value = http
        .post(format!("{base}/v1/bootstrap/claim"))
        .json(&json!({"code": running.bootstrap_code, "email": "op@x.org"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let op = claim["token"].as_str().unwrap().to_string();
    http.post(format!("{base}/v1/agents"))
        .bearer_auth(&op)
        .json(&json!({"name": "bot"}))
        .send()
        .await
        .unwrap();
    let minted: Value = http
        .post(format!("{base}/v1/tokens"))
        .bearer_auth(&op)
        .json(&json!({"class": "agent", "subject": "bot", "scope": ""}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["token"].as_str().unwrap().to_string();
    let url = format!("{base}/mcp");
    // Warm-up: the first session allocates the pools and caches.
    for _ in 0..20 {
        open_session(&http, &url, &token).await;
    }
    // Baseline in the same run: as many authenticated requests that hold
    // nothing afterwards (the allocator's growth from serving alone).
    let start = rss_kib();
    for _ in 0..2 * n {
        let r = http
            .get(format!("{base}/v1/auth/whoami"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let _ = r.text().await;
    }
    let before = rss_kib();
    println!(
        "baseline: {} requests holding nothing: +{} KiB",
        2 * n,
        before.saturating_sub(start)
    );
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(open_session(&http, &url, &token).await);
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let after = rss_kib();
    let delta_kib = after.saturating_sub(before).max(1);
    println!(
        "{n} idle sessions: RSS {before} KiB -> {after} KiB (+{delta_kib} KiB), \
         {:.1} KiB a session, {:.0} sessions per MiB",
        delta_kib as f64 / n as f64,
        n as f64 * 1024.0 / delta_kib as f64
    );
    drop(ids);
}
