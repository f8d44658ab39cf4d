//! The judge end to end: a loopback judge that answers, denies or hangs.
//! The hard timeout is short here; the breaker's 30 s and the cache's
//! 5 min pass on the injected clock, never in real time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_domain::egress::outbound::OutboundPolicy;
use gatehouse_domain::egress::{Cidr, EgressPolicy};
use gatehouse_egress::{Judge, JudgeSettings};
use support::*;
use tokio::io::AsyncReadExt;

#[derive(Clone, Copy)]
enum Mode {
    Allow,
    Deny,
    Hang,
    /// Allows until the flag is set, then denies.
    DenyOnceSet(&'static AtomicBool),
}

/// A judge on loopback; counts the questions it received.
async fn judge(mode: Mode) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/judge", listener.local_addr().unwrap());
    let asked = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (a, b) = (asked.clone(), bodies.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let (a, b) = (a.clone(), b.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    if let Some((_, body)) = text.split_once("\r\n\r\n") {
                        if body.ends_with('}') {
                            a.fetch_add(1, Ordering::SeqCst);
                            b.lock().unwrap().push(body.to_string());
                            break;
                        }
                    }
                }
                let allow = r#"{"verdict":"allow","reason":"fine"}"#;
                let deny = r#"{"verdict":"deny","reason":"not on fridays"}"#;
                let verdict = match mode {
                    Mode::Allow => allow,
                    Mode::Deny => deny,
                    Mode::DenyOnceSet(flag) if flag.load(Ordering::SeqCst) => deny,
                    Mode::DenyOnceSet(_) => allow,
                    Mode::Hang => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{verdict}",
                    verdict.len()
                );
                let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, resp.as_bytes()).await;
            });
        }
    });
    (url, asked, bodies)
}

async fn proxy_with_judge(url: String, timeout_ms: u64, port: u16) -> Proxy {
    proxy_with_judge_beside(url, timeout_ms, port, vec![]).await
}

/// As [`proxy_with_judge`], with `own_listeners` as Gatehouse's own
/// addresses (which the judge call must never reach).
async fn proxy_with_judge_beside(
    url: String,
    timeout_ms: u64,
    port: u16,
    own_listeners: Vec<std::net::SocketAddr>,
) -> Proxy {
    // The judge lives on loopback: the outbound client lets 127.0.0.0/8
    // through, as `egress.allow_private_cidrs` would.
    let outbound = gatehouse_egress::OutboundClient::new(
        OutboundPolicy {
            egress: EgressPolicy {
                allow_private_cidrs: vec![Cidr::parse("127.0.0.0/8").unwrap()],
                ..EgressPolicy::default()
            },
            own_listeners,
        },
        Arc::new(gatehouse_egress::SystemResolver),
        gatehouse_egress::tls::upstream_config(&gatehouse_egress::trust::UpstreamTrust::webpki(
            vec![],
        ))
        .unwrap(),
        Duration::from_secs(10),
    );
    let judge = Judge::new(
        JudgeSettings {
            url,
            timeout: Duration::from_millis(timeout_ms),
        },
        Arc::new(outbound),
    )
    .unwrap();
    let p = proxy(ProxyOptions {
        ports: vec![port],
        extra_roots: vec![],
        judge: Some(judge),
        secrets: vec![],
        allow_hosts: vec!["*"],
    })
    .await;
    p.resolver
        .answer("plain.test", vec!["127.0.0.1".parse().unwrap()]);
    p
}

async fn get(p: &Proxy, port: u16) -> (u16, String) {
    let head = format!(
        "GET http://plain.test:{port}/ HTTP/1.1\r\nHost: plain.test:{port}\r\nProxy-Authorization: {}\r\n\r\n",
        basic(TOKEN)
    );
    raw(p.addr, &head).await
}

#[tokio::test]
async fn verdicts_are_asked_with_the_job_and_cached_for_five_minutes() {
    let (up, seen) = plain_upstream().await;
    let (url, asked, bodies) = judge(Mode::Allow).await;
    let p = proxy_with_judge(url, 2000, up.port()).await;
    assert_eq!(get(&p, up.port()).await.0, 200);
    assert_eq!(get(&p, up.port()).await.0, 200);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "the second request used the cached verdict"
    );
    let q: serde_json::Value = serde_json::from_str(&bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(q["job"], "job1");
    assert_eq!(q["agent"], "bot");
    assert_eq!(q["owner"], "o@x.org");
    assert_eq!(q["method"], "GET");
    assert_eq!(q["host"], "plain.test");
    p.clock.advance(300);
    assert_eq!(get(&p, up.port()).await.0, 200);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
    assert!(p
        .directory
        .audits()
        .iter()
        .any(|a| a.action == "egress.judge" && a.outcome == "allow"));
}

/// A kept-alive client's kept admission (same authority, same view: no
/// second resolution) still asks the judge on every request: once the
/// cached verdict runs out, a deny refuses the next request on the same
/// connection.
#[tokio::test]
async fn a_kept_admission_still_asks_the_judge_on_every_request() {
    static DENY: AtomicBool = AtomicBool::new(false);
    let (up, seen) = plain_upstream().await;
    let (url, asked, _) = judge(Mode::DenyOnceSet(&DENY)).await;
    let p = proxy_with_judge(url, 2000, up.port()).await;
    p.directory.keep_views.store(true, Ordering::SeqCst);
    let mut kept = kept_alive(tokio::net::TcpStream::connect(p.addr).await.unwrap()).await;
    let host = format!("plain.test:{}", up.port());
    let url = format!("http://{host}/");
    let auth = basic(TOKEN);
    let headers = [("proxy-authorization", auth.as_str())];
    for _ in 0..2 {
        assert_eq!(get_on(&mut kept, &url, &host, &headers).await.0, 200);
    }
    assert_eq!(asked.load(Ordering::SeqCst), 1, "the verdict was cached");
    DENY.store(true, Ordering::SeqCst);
    p.clock.advance(300);
    let refused = get_on(&mut kept, &url, &host, &headers).await;
    assert_eq!(refused, (403, "judge".to_string()));
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    assert_eq!(p.resolver.lookups(), ["plain.test"], "admitted once");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_deny_verdict_refuses_with_the_judge_reason() {
    let (up, seen) = plain_upstream().await;
    let (url, _, _) = judge(Mode::Deny).await;
    let p = proxy_with_judge(url, 2000, up.port()).await;
    let (status, text) = get(&p, up.port()).await;
    assert_eq!(status, 403);
    assert!(
        text.to_ascii_lowercase()
            .contains("x-gatehouse-deny: judge"),
        "{text}"
    );
    assert!(text.contains("not on fridays"), "{text}");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_judge_timeout_denies_and_five_in_a_row_open_the_breaker() {
    let (up, seen) = plain_upstream().await;
    let (url, asked, _) = judge(Mode::Hang).await;
    let p = proxy_with_judge(url, 100, up.port()).await;
    for i in 1..=5 {
        let (status, text) = get(&p, up.port()).await;
        assert_eq!(status, 403, "{text}");
        assert!(text
            .to_ascii_lowercase()
            .contains("x-gatehouse-deny: judge"));
        assert_eq!(asked.load(Ordering::SeqCst), i);
    }
    let judge = p.engine.judge.as_ref().unwrap();
    assert!(judge.is_open(p.clock.now_for_test()));
    let (status, text) = get(&p, up.port()).await;
    assert_eq!(status, 403);
    assert!(text.contains("breaker open"), "{text}");
    assert_eq!(
        asked.load(Ordering::SeqCst),
        5,
        "an open breaker denies without asking"
    );
    p.clock.advance(30);
    assert!(!judge.is_open(p.clock.now_for_test()));
    assert_eq!(get(&p, up.port()).await.0, 403);
    assert_eq!(asked.load(Ordering::SeqCst), 6, "half-open: asked again");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
}

trait NowForTest {
    fn now_for_test(&self) -> i64;
}

impl NowForTest for gatehouse_domain::clock::ManualClock {
    fn now_for_test(&self) -> i64 {
        gatehouse_domain::clock::Clock::now(self)
    }
}

#[tokio::test]
async fn a_judge_at_one_of_gatehouses_own_listeners_is_never_called_and_denies() {
    let (up, seen) = plain_upstream().await;
    let (url, asked, _) = judge(Mode::Allow).await;
    let own = reqwest::Url::parse(&url)
        .unwrap()
        .socket_addrs(|| None)
        .unwrap();
    let p = proxy_with_judge_beside(url, 2000, up.port(), own).await;
    let (status, head) = get(&p, up.port()).await;
    assert_eq!(status, 403, "{head}");
    assert!(
        head.to_lowercase().contains("x-gatehouse-deny: judge"),
        "{head}"
    );
    assert_eq!(
        asked.load(Ordering::SeqCst),
        0,
        "the judge was never called"
    );
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
    assert!(p
        .directory
        .audits()
        .iter()
        .any(|a| a.action == "egress.judge" && a.outcome == "deny:refused:own_listener"));
}
