//! The installation's egress CA through the binary: `keys rotate-ca`
//! makes a new CA the signer and keeps the old one in the served bundle;
//! `keys rotate-master` re-wraps the CA key with every other key; the CA
//! key never lands in the data directory. And the `[database]` keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::Sandbox;

async fn bundle(server: &support::Server) -> String {
    let r = server.get("/v1/egress/ca.pem").await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn certificates(pem: &str) -> usize {
    pem.matches("-----BEGIN CERTIFICATE-----").count()
}

#[tokio::test]
async fn keys_rotate_ca_serves_new_and_old_and_rotate_master_rewraps_the_ca() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    let first = bundle(&server).await;
    assert_eq!(certificates(&first), 1);
    server.stop_cleanly().await;
    let files: Vec<String> = std::fs::read_dir(sandbox.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !files.iter().any(|f| f.contains("ca.key")),
        "the CA key is in the store only: {files:?}"
    );

    let out = sandbox.cmd(&["keys", "rotate-ca"]).run().await;
    out.assert_success();
    assert!(out.stdout.contains("generation 2"), "{out:?}");
    assert!(!out.stdout.contains("PRIVATE KEY"), "{out:?}");

    let server = sandbox.serve().await;
    let rotated = bundle(&server).await;
    assert_eq!(certificates(&rotated), 2, "{rotated}");
    assert!(!rotated.starts_with(&first), "the new CA comes first");
    assert!(
        rotated.contains(first.trim()),
        "the old CA is still trusted"
    );
    server.stop_cleanly().await;

    let out = sandbox.cmd(&["keys", "rotate-master"]).run().await;
    out.assert_success();
    let server = sandbox.serve().await;
    assert_eq!(
        bundle(&server).await,
        rotated,
        "the CA opens under the new master key"
    );
    server.stop_cleanly().await;

    let out = sandbox.cmd(&["audit", "export"]).run().await;
    assert!(out.stdout.contains("keys.rotate_ca"), "{out:?}");
    assert!(out.stdout.contains("egress.ca_create"), "{out:?}");
    assert!(!out.stdout.contains("PRIVATE KEY"));
}

#[tokio::test]
async fn database_keys_are_printed_and_bad_values_refused_by_name() {
    let sandbox = Sandbox::new();
    let out = sandbox.cmd(&["serve", "--print-config"]).run().await;
    out.assert_success();
    assert!(out.stdout.contains("[database]"), "{out:?}");
    assert!(out.stdout.contains("max_connections = 8\n"), "{out:?}");
    assert!(
        out.stdout.contains("statement_timeout_ms = 10000"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("ca_overlap_seconds = 604800"),
        "{out:?}"
    );
    let out = sandbox
        .cmd(&["serve", "--print-config"])
        .env("GATEHOUSE_DATABASE_MAX_CONNECTIONS", "20")
        .env("GATEHOUSE_DATABASE_STATEMENT_TIMEOUT_MS", "2500")
        .run()
        .await;
    out.assert_success();
    assert!(out.stdout.contains("max_connections = 20\n"), "{out:?}");
    assert!(
        out.stdout.contains("statement_timeout_ms = 2500"),
        "{out:?}"
    );
    for (var, value, key) in [
        (
            "GATEHOUSE_DATABASE_MAX_CONNECTIONS",
            "0",
            "database.max_connections",
        ),
        (
            "GATEHOUSE_DATABASE_STATEMENT_TIMEOUT_MS",
            "5",
            "database.statement_timeout_ms",
        ),
        (
            "GATEHOUSE_EGRESS_CA_OVERLAP_SECONDS",
            "1",
            "egress.ca_overlap_seconds",
        ),
    ] {
        let out = sandbox
            .cmd(&["serve", "--print-config"])
            .env(var, value)
            .run()
            .await;
        out.assert_refused();
        assert!(out.stderr.contains(key), "{out:?}");
    }
    let out = sandbox
        .cmd(&["serve", "--print-config"])
        .env("GATEHOUSE_DATABASE_MAX_CONNECTIONS", "many")
        .run()
        .await;
    out.assert_refused();
    assert!(
        out.stderr.contains("GATEHOUSE_DATABASE_MAX_CONNECTIONS"),
        "{out:?}"
    );
}
