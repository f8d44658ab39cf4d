//! `/metrics` after traffic full of owners, subjects, tokens, hosts,
//! secret names and values: the histograms SPEC §15 asks for are there,
//! labelled by route template, method, status class, store call and
//! egress outcome, and none of those strings appears anywhere.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::Method;
use serde_json::json;
use support::{server, Engine};

const OWNER: &str = "label-owner@labels.example";
const AGENT: &str = "label-agent-7";
const SECRET: &str = "LABEL_SECRET_NAME";
const VALUE: &str = "label-value-never-in-metrics-9876";
const HOST: &str = "secret-host.labels.example";

async fn metrics_carry_no_owner_subject_token_host_or_value(engine: Engine) {
    let s = server(engine).await;
    let operator = s.claim("label-operator@labels.example").await;
    let owner = s.owner(&operator, OWNER).await;
    let (status, _) = s
        .json(
            Method::PUT,
            &format!("/v1/secrets/{SECRET}"),
            Some(&owner),
            Some(json!({"value": VALUE, "allowed_hosts": [HOST]})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(&owner),
            Some(json!({"name": AGENT})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, job) = s
        .json(
            Method::POST,
            "/v1/jobs",
            Some(&owner),
            Some(json!({"agent": AGENT, "grants": [{"env_var": "TOKEN", "secret": SECRET}]})),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let job_token = job["job_token"].as_str().unwrap().to_string();
    let job_id = job["job_id"].as_str().unwrap().to_string();
    let placeholder = job["env"]["TOKEN"].as_str().unwrap().to_string();

    // Traffic naming all of them: API routes with raw paths, an unknown
    // path, the relay towards the host, and the proxy itself.
    s.json(
        Method::GET,
        &format!("/v1/jobs/{job_id}"),
        Some(&owner),
        None,
    )
    .await;
    s.json(
        Method::GET,
        &format!("/nowhere/{HOST}/{SECRET}"),
        None,
        None,
    )
    .await;
    s.json(Method::GET, "/v1/job/credentials", Some(&job_token), None)
        .await;
    s.json(
        Method::GET,
        &format!("/relay/{HOST}/v1?key={placeholder}"),
        Some(&job_token),
        None,
    )
    .await;
    let proxy_addr = *s.state().egress_addr.get().unwrap();
    let proxied = reqwest::Client::builder()
        .proxy(
            reqwest::Proxy::http(format!("http://{proxy_addr}"))
                .unwrap()
                .basic_auth("job", &job_token),
        )
        .build()
        .unwrap();
    let answer = proxied
        .get(format!("http://{HOST}/{SECRET}?token={placeholder}"))
        .send()
        .await
        .unwrap();
    assert!(!answer.status().is_success(), "the host does not resolve");

    let r = s.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    for needle in [
        OWNER,
        "label-operator@labels.example",
        AGENT,
        SECRET,
        VALUE,
        HOST,
        "labels.example",
        job_id.as_str(),
        job_token.as_str(),
        placeholder.as_str(),
        owner.as_str(),
        operator.as_str(),
    ] {
        assert!(!text.contains(needle), "{needle:?} appears in /metrics");
    }
    // What is there instead: templates, classes, closed outcomes.
    for expected in [
        "gatehouse_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/jobs/{id}\",status=\"2xx\"} 1",
        "gatehouse_http_request_duration_seconds_count{method=\"GET\",route=\"unmatched\",status=\"4xx\"} 1",
        "route=\"/relay/{host}/{*path}\"",
        "gatehouse_store_call_duration_seconds_count{call=\"create_job\",outcome=\"ok\"}",
        "gatehouse_egress_request_duration_seconds_count{kind=\"forward\",outcome=",
        "gatehouse_approvals_pending 0",
        "gatehouse_revocation_view_fresh 1",
        "# TYPE gatehouse_revocation_propagation_lag_seconds histogram",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let labels = line.split_once('{').map_or("", |(_, rest)| rest);
        assert!(!labels.contains('@'), "no email-like label value: {line}");
    }
}

on_both_engines!(metrics_carry_no_owner_subject_token_host_or_value);
