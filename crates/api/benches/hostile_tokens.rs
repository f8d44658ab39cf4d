//! Memory and audit rows under hostile token traffic: 100,000 refused
//! tokens from 10,000 sources against the real server's authenticator
//! (the one every route runs), on the embedded SQLite store.
//!
//! Reports resident memory (VmRSS from /proc/self/status) before and
//! after, and the audit rows written. For comparison, in the same run,
//! what the per-source rule alone (no global budget) would have admitted
//! and the memory its per-source map takes.
//! `cargo bench -p gatehouse-api --bench hostile_tokens`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, Method};
use gatehouse_api::config::Config;
use gatehouse_api::rate_limit::{FailureLimiter, REFUSAL_AUDITS_PER_SOURCE};
use gatehouse_domain::clock::{Clock, ManualClock, SystemClock};
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::master_key::encode_master_key;

const TOKENS: usize = 100_000;
const SOURCES: usize = 10_000;

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, (i / 256) as u8, (i % 256) as u8))
}

/// A refused token shaped like a real one (three base64url parts, ~400
/// bytes), different every time so no cache can help.
fn garbage(n: usize) -> String {
    format!(
        "eyJhbGciOiJFZERTQSIsImtpZCI6Imsx{n:08}In0.{}.{}",
        "eyJzdWIiOiJtYWxsb3J5In0".repeat(8),
        "c2lnbmF0dXJl".repeat(7)
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = BTreeMap::new();
    env.insert("GATEHOUSE_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("GATEHOUSE_EGRESS_LISTEN".into(), "127.0.0.1:0".into());
    env.insert(
        "GATEHOUSE_DATA_DIR".into(),
        dir.path().display().to_string(),
    );
    env.insert(
        "GATEHOUSE_MASTER_KEY".into(),
        encode_master_key(&SymmetricKey::generate())
            .trim()
            .to_string(),
    );
    let config = Config::load(None, &env).unwrap();
    let clock = ManualClock::new(SystemClock.now());
    let running =
        gatehouse_api::server::start(config, Arc::new(clock.clone()), std::future::pending())
            .await
            .unwrap();
    let st = running.state.clone();
    let rows_before = st.store.audit_all().await.unwrap().0.len();
    let rss_before = vm_rss_kib();
    let started = Instant::now();
    // 100 s of traffic on the injected clock: 1,000 refusals a second.
    for n in 0..TOKENS {
        if n % 1000 == 0 && n > 0 {
            clock.advance(1);
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {}", garbage(n))).unwrap(),
        );
        let r = st
            .auth
            .authenticate(&Method::GET, &headers, Some(source(n % SOURCES)))
            .await;
        assert!(r.is_err());
    }
    let elapsed = started.elapsed();
    // Audit writes are spawned: let them land.
    let mut rows = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = st.store.audit_all().await.unwrap().0.len() - rows_before;
        if now == rows && now > 0 {
            break;
        }
        rows = now;
    }
    let rss_after = vm_rss_kib();

    // The per-source rule alone, same traffic, same clock steps.
    let alone = FailureLimiter::new(REFUSAL_AUDITS_PER_SOURCE, 60);
    let rss_alone_before = vm_rss_kib();
    let mut would_write = 0usize;
    for n in 0..TOKENS {
        let now = 1_000_000 + (n / 1000) as i64;
        let src = source(n % SOURCES);
        if alone.blocked_for(src, now).is_none() {
            alone.record_failure(src, now);
            would_write += 1;
        }
    }
    let rss_alone_after = vm_rss_kib();

    println!("hostile tokens: {TOKENS} refused tokens from {SOURCES} sources over 100 s (injected clock)");
    println!(
        "  authenticate (refusal path)                 {:>10.1} µs/token",
        elapsed.as_secs_f64() * 1e6 / TOKENS as f64
    );
    println!("  audit rows written                          {rows:>10}");
    println!(
        "  refusals only counted (/metrics)            {:>10}",
        st.auth.refusal_audit.unaudited()
    );
    println!("  VmRSS before                                {rss_before:>10} KiB");
    println!("  VmRSS after                                 {rss_after:>10} KiB");
    println!(
        "  VmRSS growth                                {:>10} KiB",
        rss_after.saturating_sub(rss_before)
    );
    println!("  per-source rule alone: rows it would write  {would_write:>10}");
    println!(
        "  per-source rule alone: map growth (VmRSS)   {:>10} KiB",
        rss_alone_after.saturating_sub(rss_alone_before)
    );
    running.stop().await.unwrap();
}
