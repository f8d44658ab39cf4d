//! Upstream trust end to end (`egress.trust`): the real binary, its
//! platform trust store given as `SSL_CERT_FILE` (a test bundle standing in
//! for the operating system's store, as a corporate CA would be there).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use gatehouse_egress::test_support::{tls_upstream, upstream_ca};
use serde_json::json;
use support::{Sandbox, Server};

const REAL: &str = "corp_real_value_7c2e91d4a0b3";

/// A server whose platform store is `bundle` (no `extra_root_certs`),
/// with `api.test` on loopback and the secret `gh` bound to it; returns
/// the server and an operator token.
async fn server_trusting(
    sandbox: &Sandbox,
    bundle: &str,
    port: u16,
    trust: Option<&str>,
) -> (Server, String) {
    let mut cmd = sandbox
        .cmd(&["serve"])
        .env("SSL_CERT_FILE", bundle)
        .env("GATEHOUSE_EGRESS_STATIC_HOSTS", "api.test=127.0.0.1")
        .env("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8")
        .env("GATEHOUSE_EGRESS_ALLOWED_PORTS", &port.to_string());
    if let Some(t) = trust {
        cmd = cmd.env("GATEHOUSE_EGRESS_TRUST", t);
    }
    let server = cmd.start_server().await;
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
    let r = server
        .http
        .post(server.at("/v1/agents"))
        .bearer_auth(&op)
        .json(&json!({"name": "bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    (server, op)
}

/// `curl` through `gatehouse exec` with the placeholder as bearer; prints
/// the HTTP status on its own last line.
async fn curl_through_exec(
    sandbox: &Sandbox,
    server: &Server,
    op: &str,
    port: u16,
) -> support::Output {
    let script = format!(
        "curl -sS --max-time 20 -w '\\nhttp=%{{http_code}}\\n' \
         -H \"Authorization: Bearer $GH_TOKEN\" https://api.test:{port}/user"
    );
    sandbox
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
        .env("GATEHOUSE_TOKEN", op)
        .run()
        .await
}

#[tokio::test]
async fn interception_trusts_a_corporate_ca_found_only_in_the_platform_store() {
    let ca = upstream_ca();
    let (up, seen) = tls_upstream(&ca, &["api.test"]).await;
    let bundle = ca.pem_file.display().to_string();
    let sandbox = Sandbox::new();
    let (server, op) = server_trusting(&sandbox, &bundle, up.port(), None).await;
    let out = curl_through_exec(&sandbox, &server, &op, up.port()).await;
    assert!(out.stdout.contains("http=200"), "{out:?}");
    assert!(
        out.stdout.contains("\"you_sent\":\"Bearer gh_ph_"),
        "{out:?}"
    );
    assert!(!out.stdout.contains(REAL), "{out:?}");
    assert_eq!(
        seen.authorization.lock().unwrap().as_slice(),
        &[format!("Bearer {REAL}")],
        "the placeholder was swapped on a connection verified by the platform store"
    );
}

#[tokio::test]
async fn with_trust_webpki_the_platform_stores_corporate_ca_is_not_trusted() {
    let ca = upstream_ca();
    let (up, seen) = tls_upstream(&ca, &["api.test"]).await;
    let bundle = ca.pem_file.display().to_string();
    let sandbox = Sandbox::new();
    let (server, op) = server_trusting(&sandbox, &bundle, up.port(), Some("webpki")).await;
    let out = curl_through_exec(&sandbox, &server, &op, up.port()).await;
    assert!(out.stdout.contains("http=502"), "{out:?}");
    assert!(out.stdout.contains("UnknownIssuer"), "{out:?}");
    assert_eq!(
        seen.requests.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
}

#[tokio::test]
async fn serve_refuses_to_start_when_the_platform_store_cannot_be_read() {
    let sandbox = Sandbox::new();
    let missing = sandbox.root().join("no-such-bundle.pem");
    let out = sandbox
        .cmd(&["serve"])
        .env("SSL_CERT_FILE", &missing.display().to_string())
        .run()
        .await;
    out.assert_refused();
    assert!(
        out.stderr.contains("egress.trust") && out.stderr.contains("no-such-bundle.pem"),
        "the error names the setting and the file: {out:?}"
    );

    let empty = sandbox.root().join("empty.pem");
    std::fs::write(&empty, "# no certificates here\n").unwrap();
    let out = sandbox
        .cmd(&["serve"])
        .env("SSL_CERT_FILE", &empty.display().to_string())
        .env("GATEHOUSE_EGRESS_TRUST", "both")
        .run()
        .await;
    out.assert_refused();
    assert!(
        out.stderr.contains("no usable certificate") && out.stderr.contains("empty.pem"),
        "{out:?}"
    );
}

#[tokio::test]
async fn print_config_shows_the_trust_and_where_the_platform_store_is() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .cmd(&["serve", "--print-config"])
        .env("SSL_CERT_FILE", "/corp/bundle.pem")
        .run()
        .await;
    out.assert_success();
    assert!(out.stdout.contains("trust = \"platform\""), "{out:?}");
    assert!(
        out.stdout
            .contains("# platform trust store: SSL_CERT_FILE=/corp/bundle.pem"),
        "{out:?}"
    );
    let out = sandbox
        .cmd(&["serve", "--print-config"])
        .env("GATEHOUSE_EGRESS_TRUST", "both")
        .run()
        .await;
    out.assert_success();
    assert!(out.stdout.contains("trust = \"both\""), "{out:?}");
    assert!(
        out.stdout
            .contains("# platform trust store: the system's trust store"),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_bad_egress_trust_is_refused_naming_the_choices() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .cmd(&["serve", "--print-config"])
        .env("GATEHOUSE_EGRESS_TRUST", "system")
        .run()
        .await;
    out.assert_refused();
    assert!(
        out.stderr.contains("egress.trust") && out.stderr.contains("platform, webpki, both"),
        "{out:?}"
    );
}

/// `exec`'s bundle as its command sees it, and `exec`'s stderr.
async fn bundle_seen_by_exec(platform: &str) -> (String, support::Output, String) {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    let op = server.claim_operator("op@x.org").await;
    let r = server
        .http
        .post(server.at("/v1/agents"))
        .bearer_auth(&op)
        .json(&json!({"name": "bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let gatehouse_ca = server.get("/v1/egress/ca.pem").await.text().await.unwrap();
    let out = sandbox
        .cmd(&[
            "exec",
            "--agent",
            "bot",
            "--",
            "sh",
            "-c",
            "test \"$PIP_CERT\" = \"$SSL_CERT_FILE\" && cat \"$SSL_CERT_FILE\"",
        ])
        .env("GATEHOUSE_URL", &server.url)
        .env("GATEHOUSE_TOKEN", &op)
        .env("SSL_CERT_FILE", platform)
        .run()
        .await;
    (out.stdout.clone(), out, gatehouse_ca)
}

#[tokio::test]
async fn exec_bundle_is_the_platform_store_plus_gatehouse_ca() {
    let ca = upstream_ca();
    let (bundle, out, gatehouse_ca) = bundle_seen_by_exec(&ca.pem_file.display().to_string()).await;
    out.assert_success();
    let platform_pem = gatehouse_egress::trust::pem_bundle(&[ca.cert.der().clone()]);
    assert!(bundle.starts_with(&platform_pem), "{out:?}");
    assert!(bundle.contains(gatehouse_ca.trim()), "{out:?}");
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "{out:?}");
}

#[tokio::test]
async fn exec_warns_and_trusts_only_gatehouse_ca_when_the_platform_store_cannot_be_read() {
    let (bundle, out, gatehouse_ca) = bundle_seen_by_exec("/nonexistent/bundle.pem").await;
    out.assert_success();
    assert_eq!(bundle.trim(), gatehouse_ca.trim(), "{out:?}");
    assert!(
        out.stderr.contains("warning") && out.stderr.contains("/nonexistent/bundle.pem"),
        "{out:?}"
    );
}
