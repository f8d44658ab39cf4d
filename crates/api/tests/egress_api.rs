//! The egress proxy through the real server: a job created over the API,
//! its placeholder swapped towards the bound host over intercepted TLS and
//! over the relay, the echo guard, audit records without values, and the
//! job's deletion ending its proxy access. The upstream lives on loopback
//! with its own CA (`egress.static_hosts`, `egress.allow_private_cidrs`,
//! `egress.extra_root_certs`, as an operator would configure a split
//! horizon).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use gatehouse_egress::test_support::{curl, tls_upstream, upstream_ca};
use reqwest::Method;
use serde_json::json;
use std::sync::atomic::Ordering;
use support::{server_with, Engine, TestServer};

const REAL: &str = "ghp_the_real_secret_value_1234";

async fn setup(
    engine: Engine,
) -> (
    TestServer,
    String,
    u16,
    std::sync::Arc<gatehouse_egress::test_support::Seen>,
    gatehouse_egress::test_support::UpstreamCa,
) {
    let ca = upstream_ca();
    let (up, seen) = tls_upstream(&ca, &["api.test", "other.test"]).await;
    let port = up.port().to_string();
    let roots = ca.pem_file.display().to_string();
    let s = server_with(
        engine,
        &[
            (
                "GATEHOUSE_EGRESS_STATIC_HOSTS",
                "api.test=127.0.0.1,other.test=127.0.0.1",
            ),
            ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8"),
            ("GATEHOUSE_EGRESS_EXTRA_ROOT_CERTS", &roots),
            ("GATEHOUSE_EGRESS_ALLOWED_PORTS", &port),
        ],
    )
    .await;
    let op = s.claim("op@x.org").await;
    let (status, body) = s
        .json(
            Method::PUT,
            "/v1/secrets/gh",
            Some(&op),
            Some(json!({"value": REAL, "allowed_hosts": ["api.test"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(&op),
            Some(json!({"name": "bot"})),
        )
        .await;
    assert_eq!(status, 201);
    (s, op, up.port(), seen, ca)
}

async fn egress_through_the_real_server(engine: Engine) {
    let (s, op, port, seen, _ca) = setup(engine).await;
    let (status, job) = s
        .json(
            Method::POST,
            "/v1/jobs",
            Some(&op),
            Some(
                json!({"agent": "bot", "grants": [{"env_var": "GH_TOKEN", "secret": "gh"}],
                        "egress": {"allow_hosts": ["api.test", "other.test"]}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let token = job["job_token"].as_str().unwrap().to_string();
    let placeholder = job["env"]["GH_TOKEN"].as_str().unwrap().to_string();

    // The CA is public and is what the client trusts.
    let r = s.call(Method::GET, "/v1/egress/ca.pem", None, None).await;
    assert_eq!(r.status(), 200);
    let pem = r.text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let ca_file = s.dir.path().join("client-ca.pem");
    std::fs::write(&ca_file, &pem).unwrap();
    let ca_file = ca_file.display().to_string();

    let proxy = s.running.as_ref().unwrap().proxy_addr;
    let proxy_url = format!("http://job:{token}@{proxy}");
    let auth = format!("Authorization: Bearer {placeholder}");
    let (ok, out, err) = curl(&[
        "-x",
        &proxy_url,
        "--cacert",
        &ca_file,
        "-i",
        "-H",
        &auth,
        &format!("https://api.test:{port}/user"),
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(!out.contains(REAL), "echo guard: {out}");
    assert!(out.contains(&placeholder), "{out}");
    assert_eq!(
        seen.authorization.lock().unwrap().last().unwrap(),
        &format!("Bearer {REAL}")
    );

    // The same placeholder towards a host it is not bound to.
    let before = seen.requests.load(Ordering::SeqCst);
    let (_, out, _) = curl(&[
        "-x",
        &proxy_url,
        "--cacert",
        &ca_file,
        "-i",
        "-H",
        &auth,
        &format!("https://other.test:{port}/"),
    ])
    .await;
    // other.test is not bound: tunnelled untouched, so the upstream's own
    // certificate is presented, which the client (trusting only Gatehouse's
    // CA here) refuses; the placeholder never reaches it in the clear.
    assert!(!out.contains(REAL));
    assert_eq!(seen.requests.load(Ordering::SeqCst), before);

    // The relay, with the job token in its own header and the placeholder
    // in Authorization.
    let r = s
        .client
        .get(format!("{}/relay/api.test:{port}/repos?x=1", s.url))
        .header("x-gatehouse-job-token", &token)
        .header("authorization", format!("Bearer {placeholder}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("\"path\":\"/repos\"") && !body.contains(REAL),
        "{body}"
    );
    assert_eq!(
        seen.authorization.lock().unwrap().last().unwrap(),
        &format!("Bearer {REAL}")
    );
    // Relay refusals: no token, an internal host.
    let r = s
        .client
        .get(format!("{}/relay/api.test:{port}/x", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .get(format!("{}/relay/169.254.169.254/latest", s.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-gatehouse-deny"], "ssrf");

    // Audit: the swap by secret name and host, never the value.
    // Egress audit records are appended off the request path: poll.
    let mut text = String::new();
    for _ in 0..100 {
        let (_, audit) = s
            .json(Method::GET, "/v1/audit?limit=500", Some(&op), None)
            .await;
        text = audit.to_string();
        if text.contains("egress.refuse") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!text.contains(REAL));
    assert!(text.contains("gh@api.test"), "{text}");
    assert!(text.contains("egress.refuse"), "{text}");

    // Deleting the job ends its proxy access at once.
    let id = job["job_id"].as_str().unwrap();
    let r = s
        .call(Method::DELETE, &format!("/v1/jobs/{id}"), Some(&op), None)
        .await;
    assert_eq!(r.status(), 204);
    let (_, out, _) = curl(&[
        "-x",
        &proxy_url,
        "--cacert",
        &ca_file,
        "-i",
        "-H",
        &auth,
        &format!("https://api.test:{port}/user"),
    ])
    .await;
    assert!(!out.contains("HTTP/1.1 200"), "{out}");
    let (_, out, _) = curl(&["-x", &proxy_url, "-i", &format!("http://api.test:{port}/")]).await;
    assert!(out.starts_with("HTTP/1.1 407"), "{out}");
}

async fn a_session_token_is_not_a_proxy_credential(engine: Engine) {
    let (s, op, port, seen, _ca) = setup(engine).await;
    let proxy = s.running.as_ref().unwrap().proxy_addr;
    let (_, out, _) = curl(&[
        "-x",
        &format!("http://job:{op}@{proxy}"),
        "-i",
        &format!("http://api.test:{port}/"),
    ])
    .await;
    assert!(out.starts_with("HTTP/1.1 407"), "{out}");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
}

async fn an_agent_policy_holds_every_job_of_the_agent(engine: Engine) {
    let (s, op, port, seen, _ca) = setup(engine).await;
    // The agent may reach other.test only, whatever its jobs ask for.
    let (status, body) = s
        .json(
            Method::PUT,
            "/v1/agents/bot/egress",
            Some(&op),
            Some(json!({"allow_hosts": ["OTHER.test."]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["allow_hosts"], json!(["other.test"]));
    let (_, agents) = s.json(Method::GET, "/v1/agents", Some(&op), None).await;
    assert_eq!(
        agents,
        json!([{"name": "bot", "allow_hosts": ["other.test"], "secrets": []}])
    );
    let (status, job) = s
        .json(
            Method::POST,
            "/v1/jobs",
            Some(&op),
            Some(
                json!({"agent": "bot", "grants": [{"env_var": "GH_TOKEN", "secret": "gh"}],
                        "egress": {"allow_hosts": ["*"]}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    let token = job["job_token"].as_str().unwrap().to_string();
    let relay = |host: &str| {
        s.client
            .get(format!("{}/relay/{host}:{port}/x", s.url))
            .bearer_auth(&token)
            .send()
    };
    let before = seen.requests.load(Ordering::SeqCst);
    let r = relay("api.test").await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-gatehouse-deny"], "not_allowed");
    assert_eq!(seen.requests.load(Ordering::SeqCst), before);

    // Lifting the policy (a human session: runs at once) lets the job's own
    // list decide again from the next request: nothing of it is cached.
    let (status, body) = s
        .json(
            Method::PUT,
            "/v1/agents/bot/egress",
            Some(&op),
            Some(json!({"allow_hosts": null})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(relay("api.test").await.unwrap().status(), 200);

    // Bad policies are refused by name; an unknown agent is 404.
    for bad in [
        json!({"allow_hosts": ["http://x"]}),
        json!({"allow_hosts": "x"}),
        json!({}),
    ] {
        let (status, _) = s
            .json(
                Method::PUT,
                "/v1/agents/bot/egress",
                Some(&op),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = s
        .json(
            Method::PUT,
            "/v1/agents/nobody/egress",
            Some(&op),
            Some(json!({"allow_hosts": []})),
        )
        .await;
    assert_eq!(status, 404);
}

on_both_engines!(
    an_agent_policy_holds_every_job_of_the_agent,
    egress_through_the_real_server,
    a_session_token_is_not_a_proxy_credential,
);
