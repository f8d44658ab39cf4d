//! Logs of the real binary (SPEC §15): `GATEHOUSE_LOG_FORMAT=json` writes
//! one JSON object a line, and each line written while serving a request
//! carries that request's `request_id`, the one its `X-Request-Id` header
//! shows; text by default; an unknown format is refused at start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::Sandbox;

/// How long a log line may take to reach the file.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// Waits until `stderr()` holds a line containing `needle`.
async fn wait_for_line(stderr: impl Fn() -> String, needle: &str) -> String {
    let deadline = Instant::now() + LOG_WAIT;
    loop {
        let text = stderr();
        if text.lines().any(|l| l.contains(needle)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needle:?} within {LOG_WAIT:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_each_with_its_request_id() {
    let sandbox = Sandbox::new();
    let server = sandbox
        .cmd(&["serve"])
        .env("GATEHOUSE_LOG_FORMAT", "json")
        .start_server()
        .await;
    let refused = server
        .get_with_token("/v1/auth/whoami", "not-a-token")
        .await;
    assert_eq!(refused.status(), 401);
    let id = refused.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let ok = server.get("/healthz").await;
    let other = ok.headers()["x-request-id"].to_str().unwrap().to_string();

    let text = wait_for_line(|| server.stderr(), &other).await;
    let mut of_request = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        assert!(value.is_object(), "{line}");
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
        if value["request_id"] == id.as_str() {
            of_request.push(value);
        }
    }
    // The verifier's refusal and the request's closing line, both named.
    assert!(
        of_request
            .iter()
            .any(|v| v["fields"]["message"] == "token refused"),
        "{text}"
    );
    let finished = of_request
        .iter()
        .find(|v| v["fields"]["message"] == "request finished")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(finished["fields"]["route"], "/v1/auth/whoami");
    assert_eq!(finished["fields"]["status"], 401);
    assert!(!text.contains("not-a-token"), "no token in logs");
}

#[tokio::test]
async fn logs_are_text_by_default() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    let r = server.get("/healthz").await;
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = wait_for_line(|| server.stderr(), &id).await;
    let line = text.lines().find(|l| l.contains(&id)).unwrap();
    assert!(serde_json::from_str::<Value>(line).is_err(), "{line}");
    assert!(line.contains("request finished"), "{line}");
}

#[tokio::test]
async fn an_unknown_log_format_is_refused_at_start() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .cmd(&["serve"])
        .env("GATEHOUSE_LOG_FORMAT", "yaml")
        .run()
        .await;
    out.assert_refused();
    assert!(out.stderr.contains("GATEHOUSE_LOG_FORMAT"), "{out:?}");
}
