//! `gatehouse exec` end to end: the real binary serving, the real binary
//! running a shell script as a job that calls a TLS upstream (its own CA,
//! reached through `egress.static_hosts`) with `curl` through the proxy.
//! The CLI's own API calls go straight to Gatehouse, never through a
//! proxy named in the caller's environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use gatehouse_egress::test_support::{tls_upstream, upstream_ca};
use serde_json::{json, Value};
use support::Sandbox;

const REAL: &str = "ghp_exec_real_value_0987654321";

/// The jobs `token` sees, deleted ones included.
async fn jobs_of(server: &support::Server, token: &str) -> Vec<Value> {
    server
        .get_with_token("/v1/jobs", token)
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn exec_runs_a_command_as_a_job_behind_the_proxy_and_deletes_the_job() {
    let ca = upstream_ca();
    let (up, seen) = tls_upstream(&ca, &["api.test"]).await;
    let sandbox = Sandbox::new();
    let server = sandbox
        .cmd(&["serve"])
        .env("GATEHOUSE_EGRESS_STATIC_HOSTS", "api.test=127.0.0.1")
        .env("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8")
        .env(
            "GATEHOUSE_EGRESS_EXTRA_ROOT_CERTS",
            &ca.pem_file.display().to_string(),
        )
        .env("GATEHOUSE_EGRESS_ALLOWED_PORTS", &up.port().to_string())
        .start_server()
        .await;
    assert!(
        server.stdout.contains("Egress proxy on http://127.0.0.1:"),
        "{}",
        server.stdout
    );
    let op = server.claim_operator("op@x.org").await;
    let r = server
        .http
        .put(server.at("/v1/secrets/gh"))
        .bearer_auth(&op)
        .json(&json!({"value": REAL, "allowed_hosts": ["api.test"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    server.register_agent(&op, "bot").await;

    let script = format!(
        "echo \"env=$GH_TOKEN\"; env | grep -c '{REAL}' || true; \
         curl -sS --max-time 20 -H \"Authorization: Bearer $GH_TOKEN\" https://api.test:{}/user; echo; exit 7",
        up.port()
    );
    let out = sandbox
        .cmd(&[
            "exec",
            "--agent",
            "bot",
            "--grant",
            "GH_TOKEN=gh",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .env("GATEHOUSE_URL", &server.url)
        .env("GATEHOUSE_TOKEN", &op)
        .run()
        .await;
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(out.stdout.contains("env=gh_ph_"), "{out:?}");
    assert!(
        !out.stdout.contains(REAL) && !out.stderr.contains(REAL),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("\"you_sent\":\"Bearer gh_ph_"),
        "{out:?}"
    );
    assert_eq!(
        seen.authorization.lock().unwrap().as_slice(),
        &[format!("Bearer {REAL}")]
    );
    // The job is gone once the command has ended.
    let jobs = jobs_of(&server, &op).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["deleted"], true);
}

#[tokio::test]
async fn exec_refuses_bad_grants_before_running_anything() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    let op = server.claim_operator("op@x.org").await;
    // Agent and secret exist, so only the grant's variable can be refused.
    let r = server
        .http
        .put(server.at("/v1/secrets/gh"))
        .bearer_auth(&op)
        .json(&json!({"value": REAL, "allowed_hosts": ["api.test"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    server.register_agent(&op, "bot").await;
    let marker = sandbox.root().join("ran");
    let out = sandbox
        .cmd(&[
            "exec",
            "--agent",
            "bot",
            "--grant",
            "PATH=gh",
            "--",
            "touch",
            &marker.display().to_string(),
        ])
        .env("GATEHOUSE_URL", &server.url)
        .env("GATEHOUSE_TOKEN", &op)
        .run()
        .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("PATH") && out.stderr.contains("cannot be granted"),
        "the message names the rule: {out:?}"
    );
    assert!(!marker.exists());
    // No job was left behind either.
    let jobs = jobs_of(&server, &op).await;
    assert!(jobs.is_empty(), "{jobs:?}");
}

#[tokio::test]
async fn exec_reaches_the_api_directly_whatever_proxy_the_environment_names() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    let op = server.claim_operator("op@x.org").await;
    server.register_agent(&op, "bot").await;
    // A proxy that counts who comes to it and hangs up on them: had the
    // CLI used it, its calls (and the token on them) would have gone there.
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_url = format!("http://{}", trap.local_addr().unwrap());
    let contacted = Arc::new(AtomicUsize::new(0));
    tokio::spawn({
        let contacted = contacted.clone();
        async move {
            while let Ok((conn, _)) = trap.accept().await {
                contacted.fetch_add(1, Ordering::SeqCst);
                drop(conn);
            }
        }
    });
    let mut cmd = sandbox
        .cmd(&["exec", "--agent", "bot", "--", "true"])
        .env("GATEHOUSE_URL", &server.url)
        .env("GATEHOUSE_TOKEN", &op);
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd = cmd.env(name, &trap_url);
    }
    let out = cmd.run().await;
    out.assert_success();
    assert_eq!(contacted.load(Ordering::SeqCst), 0, "{out:?}");
    // The calls did reach the API: the job was made, then deleted.
    let jobs = jobs_of(&server, &op).await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["deleted"], true);
}
