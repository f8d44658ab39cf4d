//! End-to-end tests of the real `gatehouse` binary: `serve`, `keys` and
//! `audit`, each in a private temporary directory with a cleared
//! environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sqlx::{ConnectOptions, Connection};
use support::{hex, mode_of, random_bytes, random_master_key, Output, Sandbox};

/// A refusal at start must not wait for anything: such commands run with
/// [`support::Cmd::run_within`] this bound, which fails the test if
/// the process has not ended by then (no timing is asserted).
const QUICK: Duration = Duration::from_secs(10);

#[track_caller]
fn assert_quick_refusal(out: &Output) {
    out.assert_refused();
}

#[track_caller]
fn assert_never_echoes(out: &Output, secret: &str) {
    assert!(
        !out.stderr.contains(secret) && !out.stdout.contains(secret),
        "the output echoes {secret:?}:\n{out:?}"
    );
}

async fn whoami(server: &support::Server, token: &str) -> reqwest::Response {
    server.get_with_token("/v1/auth/whoami", token).await
}

async fn jwks_key_count(server: &support::Server) -> usize {
    let resp = server.get("/.well-known/jwks.json").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["keys"].as_array().expect("keys array").len()
}

#[tokio::test]
async fn serve_prints_address_and_bootstrap_code_and_becomes_ready() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_dir();
    let server = sandbox.serve().await;

    // The address line carries the real port, not 0.
    let port: u16 = server
        .url
        .strip_prefix("http://127.0.0.1:")
        .expect("loopback URL")
        .parse()
        .expect("port");
    assert_ne!(port, 0);

    let code = server.bootstrap_code.clone().expect("a bootstrap code");
    let parts: Vec<&str> = code.split('-').collect();
    assert_eq!(
        parts.len(),
        4,
        "code {code:?} is not XXXXX-XXXXX-XXXXX-XXXXX"
    );
    assert!(parts.iter().all(|p| p.len() == 5
        && p.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())));

    let code_file = data.join("bootstrap.code");
    assert_eq!(mode_of(&code_file), 0o600);
    assert_eq!(std::fs::read_to_string(&code_file).unwrap().trim(), code);
    assert_eq!(mode_of(&data.join("master.key")), 0o600);

    assert_eq!(server.get("/readyz").await.status(), 200);
    assert_eq!(server.get("/healthz").await.status(), 200);

    // Claim: the email is normalised, the session comes back twice.
    let resp = server.claim(&code, "Op@Example.com").await;
    assert_eq!(resp.status(), 201);
    let cookies: Vec<String> = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["email"], "op@example.com");
    let token = body["token"].as_str().expect("token").to_string();
    assert!(!token.is_empty());
    assert!(body["expires_at"].as_str().is_some_and(|s| !s.is_empty()));
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("gatehouse_session="))
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"));
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert_eq!(attributes[0], format!("gatehouse_session={token}"));
    assert!(attributes.contains(&"HttpOnly"), "{cookie}");
    assert!(attributes.contains(&"SameSite=Strict"), "{cookie}");
    assert!(
        !attributes.iter().any(|a| a.eq_ignore_ascii_case("Secure")),
        "no Secure on loopback: {cookie}"
    );

    assert!(!code_file.exists(), "the used bootstrap code file is gone");
    assert_eq!(server.claim(&code, "other@example.com").await.status(), 409);

    let me: Value = whoami(&server, &token).await.json().await.unwrap();
    assert_eq!(me["owner"], "op@example.com");
    assert_eq!(me["cls"], "session");
    let log = server.stop_cleanly().await;
    assert!(!log.contains(&token), "the log holds the session token");

    // Restart on the same data: claimed, so no code; the signing key
    // persisted, so the session still verifies.
    let server = sandbox.serve().await;
    assert_eq!(server.bootstrap_code, None);
    assert!(
        !server.stdout.contains("Bootstrap code"),
        "{}",
        server.stdout
    );
    assert!(!code_file.exists());
    let resp = whoami(&server, &token).await;
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["owner"], "op@example.com");
    server.stop_cleanly().await;
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    // A kept-alive idle connection must not hold the shutdown up.
    assert_eq!(server.get("/healthz").await.status(), 200);
    let status = server.stop().await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[tokio::test]
async fn bad_master_keys_are_refused_at_start_without_echo() {
    let short = hex(&random_bytes(31));
    let cases = [
        (short.as_str(), "32 bytes"),
        ("not-a-key!!", "neither hex nor base64"),
        (&"ab".repeat(32), "repeated"),
    ];
    for (key, says) in cases {
        let sandbox = Sandbox::new();
        let out = sandbox
            .cmd(&["serve"])
            .env("GATEHOUSE_MASTER_KEY", key)
            .run_within(QUICK)
            .await;
        assert_quick_refusal(&out);
        assert!(out.stderr.contains(says), "expected {says:?}:\n{out:?}");
        assert!(out.stderr.contains("GATEHOUSE_MASTER_KEY"), "{out:?}");
        assert_never_echoes(&out, key);
        assert!(!out.stdout.contains("listening"), "{out:?}");
    }

    // A key file others can read is refused, naming the fix.
    let sandbox = Sandbox::new();
    let data = sandbox.data_dir();
    std::fs::create_dir(&data).unwrap();
    let key = random_master_key();
    let key_file = data.join("master.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = sandbox.cmd(&["serve"]).run_within(QUICK).await;
    assert_quick_refusal(&out);
    assert!(out.stderr.contains("chmod"), "{out:?}");
    assert_never_echoes(&out, &key);
    assert_eq!(mode_of(&key_file), 0o644, "the file is left as it was");
}

#[tokio::test]
async fn unknown_config_key_is_refused_by_name() {
    let sandbox = Sandbox::new();
    let file = sandbox.root().join("gatehouse.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nbogus_key = 1\n").unwrap();
    let out = sandbox.cmd(&["serve"]).run_within(QUICK).await;
    assert_quick_refusal(&out);
    assert!(out.stderr.contains("bogus_key"), "{out:?}");

    std::fs::write(&file, "[tokens]\nclock_skew_seconds = 301\n").unwrap();
    let out = sandbox.cmd(&["serve"]).run_within(QUICK).await;
    assert_quick_refusal(&out);
    assert!(out.stderr.contains("clock_skew_seconds"), "{out:?}");

    // The same file named with --config is read too.
    std::fs::rename(&file, sandbox.root().join("other.toml")).unwrap();
    let out = sandbox
        .cmd(&["serve", "--config", "other.toml"])
        .run_within(QUICK)
        .await;
    assert_quick_refusal(&out);
    assert!(out.stderr.contains("clock_skew_seconds"), "{out:?}");
}

#[tokio::test]
async fn print_config_masks_secrets() {
    let sandbox = Sandbox::new();
    let key = random_master_key();
    let out = sandbox
        .cmd(&["serve", "--print-config"])
        .env("GATEHOUSE_MASTER_KEY", &key)
        .env("GATEHOUSE_DATABASE_URL", "postgres://u:hunter2@db/x")
        .env("GATEHOUSE_BOOTSTRAP_CODE", "PRESET-CODE")
        .run()
        .await;
    out.assert_success();
    assert!(out.stdout.contains("listen"), "{out:?}");
    assert!(out.stdout.contains("127.0.0.1:0"), "{out:?}");
    for secret in [key.as_str(), "hunter2", "PRESET-CODE"] {
        assert_never_echoes(&out, secret);
    }
    assert!(
        !sandbox.data_dir().exists(),
        "--print-config creates nothing"
    );
}

#[tokio::test]
async fn preset_bootstrap_code_is_used() {
    let preset = "ABCDE-FGHJK-MNPQR-STVWX";
    let sandbox = Sandbox::new();
    let server = sandbox
        .cmd(&["serve"])
        .env("GATEHOUSE_BOOTSTRAP_CODE", preset)
        .start_server()
        .await;
    assert_eq!(server.bootstrap_code.as_deref(), Some(preset));
    assert_eq!(
        std::fs::read_to_string(sandbox.data_dir().join("bootstrap.code"))
            .unwrap()
            .trim(),
        preset
    );
    let resp = server.claim(preset, "op@example.com").await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["email"], "op@example.com");
    server.stop_cleanly().await;
}

/// Runs `sql` statements against the SQLite store in `dir`.
async fn tamper(dir: &Path, statements: &[&str]) {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("gatehouse.db"))
        .connect()
        .await
        .expect("open the copied store");
    for sql in statements {
        let done = sqlx::query(sql).execute(&mut conn).await.expect(sql);
        assert!(done.rows_affected() > 0, "{sql} changed nothing");
    }
    conn.close().await.unwrap();
}

/// The record number named in `audit verify`'s report of a break.
#[track_caller]
fn broken_record(out: &Output) -> i64 {
    assert_eq!(out.status.code(), Some(2), "verify must exit 2:\n{out:?}");
    let at = out
        .stdout
        .find("record ")
        .unwrap_or_else(|| panic!("no record named:\n{out:?}"));
    out.stdout[at + "record ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no record number:\n{out:?}"))
}

#[tokio::test]
async fn audit_verify_names_the_first_broken_record() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    let token = server.claim_operator("op@example.com").await;
    assert_eq!(server.put_secret(&token, "GH", "v").await.status(), 201);
    assert_eq!(server.delete_secret(&token, "GH").await.status(), 204);
    assert_eq!(server.put_secret(&token, "GH2", "w").await.status(), 201);
    server.stop_cleanly().await;

    let out = sandbox.cmd(&["audit", "verify"]).run().await;
    out.assert_success();
    assert!(out.stdout.contains("intact"), "{out:?}");

    let out = sandbox.cmd(&["audit", "export"]).run().await;
    out.assert_success();
    let records: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let seqs: Vec<i64> = records.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    let n = i64::try_from(records.len()).unwrap();
    assert!(n >= 4, "at least four records: {seqs:?}");
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    for r in &records {
        assert!(r.is_object());
        for field in ["ts", "actor", "action", "outcome", "prev_hash", "hash"] {
            assert!(r.get(field).is_some(), "{field} missing in {r}");
        }
    }
    assert!(!out.stdout.contains("\"v\""), "no secret value in the log");
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"bootstrap.claim"), "{actions:?}");
    assert!(actions.contains(&"secret.write"), "{actions:?}");
    assert!(actions.contains(&"secret.delete"), "{actions:?}");

    let verify = |dir: std::path::PathBuf| {
        let cmd = sandbox.cmd(&["audit", "verify"]).data_dir(&dir);
        async move { cmd.run().await }
    };

    // (a) an edited record is named.
    let dir = sandbox.copy_data_dir("edited");
    tamper(&dir, &["UPDATE audit SET outcome = 'x' WHERE seq = 2"]).await;
    assert_eq!(broken_record(&verify(dir).await), 2);

    // (b) a deleted record: the gap shows at the next one.
    let dir = sandbox.copy_data_dir("deleted");
    tamper(&dir, &["DELETE FROM audit WHERE seq = 3"]).await;
    let out = verify(dir).await;
    assert_eq!(broken_record(&out), 4);
    assert!(out.stdout.contains("expected record 3"), "{out:?}");

    // (c) records 2 and 3 swapped, seq kept in order: 2 no longer fits.
    let dir = sandbox.copy_data_dir("swapped");
    tamper(
        &dir,
        &[
            "UPDATE audit SET seq = -2 WHERE seq = 2",
            "UPDATE audit SET seq = 2 WHERE seq = 3",
            "UPDATE audit SET seq = 3 WHERE seq = -2",
        ],
    )
    .await;
    assert_eq!(broken_record(&verify(dir).await), 2);

    // (d) the last record removed: only the chain head can tell.
    let dir = sandbox.copy_data_dir("truncated");
    tamper(&dir, &[&format!("DELETE FROM audit WHERE seq = {n}")]).await;
    let out = verify(dir).await;
    assert_eq!(broken_record(&out), n);
    assert!(out.stdout.contains("chain head"), "{out:?}");

    // The original is untouched by all this.
    sandbox
        .cmd(&["audit", "verify"])
        .run()
        .await
        .assert_success();
}

#[tokio::test]
async fn keys_rotate_master_rewraps_and_server_still_starts() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_dir();
    let server = sandbox.serve().await;
    let token = server.claim_operator("op@example.com").await;
    let value1 = format!("first-{}", hex(&random_bytes(8)));
    let value2 = format!("second-{}", hex(&random_bytes(8)));
    assert_eq!(server.put_secret(&token, "GH", &value1).await.status(), 201);
    let mut logs = server.stop_cleanly().await;

    let key_file = data.join("master.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let out = sandbox.cmd(&["keys", "rotate-master"]).run().await;
    out.assert_success();
    assert_never_echoes(&out, old_key.trim());

    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, old_key, "master.key holds a new key");
    assert_never_echoes(&out, new_key.trim());
    assert_eq!(mode_of(&key_file), 0o600);
    let old_file = data.join("master.key.old");
    assert_eq!(std::fs::read_to_string(&old_file).unwrap(), old_key);
    assert_eq!(mode_of(&old_file), 0o600);
    assert!(!data.join("master.key.next").exists());

    // Every wrapped key now opens under the new key.
    let server = sandbox.serve().await;
    assert_eq!(whoami(&server, &token).await.status(), 200);
    assert_eq!(server.put_secret(&token, "GH", &value2).await.status(), 200);
    logs.push_str(&server.stop_cleanly().await);

    // The old key no longer fits this store.
    let out = sandbox
        .cmd(&["serve"])
        .env("GATEHOUSE_MASTER_KEY", old_key.trim())
        .run_within(QUICK)
        .await;
    assert_quick_refusal(&out);
    assert!(
        out.stderr.contains("not loaded") && out.stderr.contains("master key"),
        "{out:?}"
    );
    assert_never_echoes(&out, old_key.trim());

    // The chain recorded the rotation and is intact.
    let out = sandbox.cmd(&["audit", "verify"]).run().await;
    out.assert_success();
    let out = sandbox.cmd(&["audit", "export"]).run().await;
    assert!(out.stdout.contains("keys.rotate_master"), "{out:?}");

    // Secret values and keys appear in no log and no audit record.
    for secret in [
        value1.as_str(),
        value2.as_str(),
        old_key.trim(),
        new_key.trim(),
    ] {
        assert!(!logs.contains(secret), "a server log holds {secret:?}");
        assert_never_echoes(&out, secret);
    }
}

#[tokio::test]
async fn keys_rotate_makes_a_new_signing_key_and_old_tokens_keep_working() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    let token = server.claim_operator("op@example.com").await;
    assert_eq!(jwks_key_count(&server).await, 1);
    server.stop_cleanly().await;

    let out = sandbox.cmd(&["keys", "rotate"]).run().await;
    out.assert_success();

    let server = sandbox.serve().await;
    assert_eq!(jwks_key_count(&server).await, 2);
    let resp = whoami(&server, &token).await;
    assert_eq!(resp.status(), 200);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["owner"], "op@example.com");
    server.stop_cleanly().await;
}

#[tokio::test]
async fn unsupported_database_url_is_refused() {
    let sandbox = Sandbox::new();
    let out = sandbox
        .cmd(&["serve"])
        .env("GATEHOUSE_DATABASE_URL", "mysql://x/y")
        .run_within(QUICK)
        .await;
    assert_quick_refusal(&out);
    assert!(
        out.stderr.contains("unsupported database URL scheme"),
        "{out:?}"
    );
    assert!(!sandbox.data_dir().join("gatehouse.db").exists());
}

#[tokio::test]
async fn store_commands_refuse_a_missing_store_and_create_nothing() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_dir();
    std::fs::create_dir_all(&data).unwrap();
    for args in [
        &["audit", "verify"][..],
        &["audit", "export"][..],
        &["keys", "rotate"][..],
        &["keys", "rotate-master"][..],
    ] {
        let out = sandbox.cmd(args).run().await;
        out.assert_refused();
        assert!(
            out.stderr.contains("no Gatehouse store"),
            "{args:?}: {out:?}"
        );
    }
    assert!(!data.join("gatehouse.db").exists(), "no store was created");
    assert!(!data.join("master.key").exists(), "no key was created");
}

#[tokio::test]
async fn rotate_master_finishes_an_interrupted_rotation_instead_of_losing_the_key() {
    let sandbox = Sandbox::new();
    let data = sandbox.data_dir();
    let server = sandbox.serve().await;
    let token = server.claim_operator("op@example.com").await;
    assert_eq!(server.put_secret(&token, "GH", "v1").await.status(), 201);
    server.stop_cleanly().await;
    sandbox
        .cmd(&["keys", "rotate-master"])
        .run()
        .await
        .assert_success();
    // Put the files back as if the rotation had committed but crashed
    // before promoting the new key file.
    let key_file = data.join("master.key");
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::rename(&key_file, data.join("master.key.next")).unwrap();
    std::fs::rename(data.join("master.key.old"), &key_file).unwrap();

    // A server still starts: it loads both key files.
    let server = sandbox.serve().await;
    assert_eq!(whoami(&server, &token).await.status(), 200);
    server.stop_cleanly().await;

    let out = sandbox.cmd(&["keys", "rotate-master"]).run().await;
    out.assert_success();
    assert!(out.stdout.contains("interrupted rotation"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        new_key,
        "the key in use was promoted, not replaced"
    );
    assert!(!data.join("master.key.next").exists());
    let server = sandbox.serve().await;
    assert_eq!(server.put_secret(&token, "GH", "v2").await.status(), 200);
    server.stop_cleanly().await;
}
