//! The API listener against slow and numerous clients (SPEC §6): a
//! request head that does not arrive within
//! `server.header_timeout_seconds` closes the connection, and connections
//! beyond `server.max_connections` are closed at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::{server_with, Engine, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound for "promptly": the test fails if it is reached.
const BOUND: Duration = Duration::from_secs(10);

fn addr(s: &TestServer) -> String {
    s.url.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes; `None` if it did not within [`BOUND`].
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(BOUND, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| got)
}

/// One request on a kept-alive connection; the status line's code.
async fn healthz(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gatehouse\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..n])
        .chars()
        .skip(9)
        .take(3)
        .collect()
}

async fn a_client_that_never_finishes_its_request_head_is_disconnected(engine: Engine) {
    let s = server_with(engine, &[("GATEHOUSE_SERVER_HEADER_TIMEOUT_SECONDS", "1")]).await;
    let mut slow = TcpStream::connect(addr(&s)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: gatehouse\r\nX-Slow: ")
        .await
        .unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(
        answer.is_some(),
        "the server still holds a connection whose head never arrived"
    );
    assert!(
        !String::from_utf8_lossy(&answer.unwrap()).contains("200 OK"),
        "the partial request was not served"
    );
    // Silence from the first byte on counts the same, and so does an idle
    // kept-alive connection after its last answer: neither holds a slot.
    let mut silent = TcpStream::connect(addr(&s)).await.unwrap();
    assert!(
        read_until_closed(&mut silent).await.is_some(),
        "a silent connection is held"
    );
    let mut idle = TcpStream::connect(addr(&s)).await.unwrap();
    assert_eq!(healthz(&mut idle).await, "200");
    assert!(
        read_until_closed(&mut idle).await.is_some(),
        "an idle kept-alive connection is held"
    );
    // Everyone else is served as before, peer address included.
    let mut ok = TcpStream::connect(addr(&s)).await.unwrap();
    assert_eq!(healthz(&mut ok).await, "200");
    let (status, _) = s
        .json(reqwest::Method::GET, "/v1/auth/whoami", None, None)
        .await;
    assert_eq!(status, 401);
}

async fn connections_beyond_max_connections_are_closed_at_once(engine: Engine) {
    let s = server_with(engine, &[("GATEHOUSE_SERVER_MAX_CONNECTIONS", "2")]).await;
    let mut first = TcpStream::connect(addr(&s)).await.unwrap();
    let mut second = TcpStream::connect(addr(&s)).await.unwrap();
    assert_eq!(healthz(&mut first).await, "200");
    assert_eq!(healthz(&mut second).await, "200");
    let mut third = TcpStream::connect(addr(&s)).await.unwrap();
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gatehouse\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut third).await.expect("closed at once");
    assert!(answer.is_empty(), "the third connection was served");
    // A slot freed is a slot usable again.
    drop(first);
    let mut served = false;
    for _ in 0..100 {
        let mut again = TcpStream::connect(addr(&s)).await.unwrap();
        again
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: gatehouse\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(BOUND, again.read(&mut buf)).await {
            if n > 0 {
                served = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a freed slot was never reused");
    assert_eq!(healthz(&mut second).await, "200");
}

on_both_engines!(
    a_client_that_never_finishes_its_request_head_is_disconnected,
    connections_beyond_max_connections_are_closed_at_once,
);
