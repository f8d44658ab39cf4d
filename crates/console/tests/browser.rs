//! The console end to end in a real browser: Debian's Chromium, headless,
//! driven through chromedriver by fantoccini (WebDriver). One person's
//! first visit: claim, paste an upstream token (a fake Databricks), watch
//! an agent's gated request arrive in the open inbox without a reload,
//! approve it (the agent's poll sees `executed`); a tampered CSRF token
//! refused; script payloads shown as text; signing out ends the session.
//! Screenshots of every page go to `target/console-shots/`.
//!
//! Without `chromium` and `chromedriver` the test says so and passes,
//! except under `CI=true`, where that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../api/tests/support/mod.rs"]
mod support;

#[path = "../../api/tests/support/upstream.rs"]
mod fake_upstream;

mod common;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use reqwest::Method;
use serde_json::{json, Value};

use common::*;
use fake_upstream::FakeUpstream;
use gatehouse_domain::clock::{ManualClock, SystemClock};
use gatehouse_domain::Clock;

const WAIT: Duration = Duration::from_secs(15);
const OPERATOR: &str = "op@x.org";
const PAYLOAD: &str =
    "<script>window.__xss=1</script>\"onerror=window.__xss=2 <img src=x onerror=window.__xss=3>";

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("console-shots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Browser {
    client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    async fn start(chromium: &Path, chromedriver: &Path) -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Self {
                        client,
                        driver,
                        _profile: profile,
                        shots: shots_dir(),
                    }
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start: {last:?}");
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    async fn wait_path(&self, prefix: &str) {
        for _ in 0..150 {
            if self.path().await.starts_with(prefix) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.shot("failure").await;
        let text = self.client.source().await.unwrap_or_default();
        panic!("never reached {prefix}; at {}: {text}", self.path().await);
    }

    async fn wait_text(&self, needle: &str) {
        for _ in 0..150 {
            if self.client.source().await.unwrap().contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.shot("failure").await;
        let text = self.client.source().await.unwrap_or_default();
        panic!("{needle:?} never appeared on {}: {text}", self.path().await);
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn script(&self, js: &str) -> Value {
        self.client.execute(js, vec![]).await.unwrap()
    }

    async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

#[tokio::test]
async fn a_person_claims_pastes_a_token_and_approves_an_agent_live_in_chromium() {
    let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver"))
    else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium and chromedriver are required under CI (apt-get install chromium chromium-driver)");
        }
        eprintln!("SKIPPED: chromium or chromedriver is not installed");
        return;
    };
    with_console();
    let clock = ManualClock::new(SystemClock.now());
    let fake = FakeUpstream::start(Arc::new(clock.clone())).await;
    let config = format!(
        "[[upstream]]\nname = \"dbx\"\nowner = \"{OPERATOR}\"\ndriver = \"databricks\"\nbase_url = \"{}/\"\n",
        fake.url
    );
    // The fake upstream lives on loopback: the operator lets it through.
    let s = server_with_clock(
        Engine::Sqlite,
        &[("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8")],
        Some(&config),
        clock,
    )
    .await;
    let b = Browser::start(&chromium, &chromedriver).await;

    // Whatever happens in the flow, the browser is closed before the
    // test ends, so no Chromium outlives a failure.
    let outcome = AssertUnwindSafe(flow(&s, &fake, &b)).catch_unwind().await;
    b.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn flow(s: &TestServer, fake: &FakeUpstream, b: &Browser) {
    // A newcomer opens the address and is sent to the claim page.
    b.client.goto(&s.url).await.unwrap();
    b.wait_path("/claim").await;
    b.shot("01-claim").await;
    b.fill("#code", s.code.as_deref().unwrap()).await;
    b.fill("#email", OPERATOR).await;
    b.click("form[action='/claim'] button[type=submit]").await;
    b.wait_path("/approvals").await;
    b.wait_text("Live: new requests appear here").await;
    b.shot("02-approvals-empty").await;
    let session = b
        .client
        .get_named_cookie("gatehouse_session")
        .await
        .unwrap()
        .value()
        .to_string();

    // Paste an upstream token: a foreign one is refused clearly, then the
    // operator's own is exchanged; a second paste is 409.
    b.client
        .goto(&format!("{}/upstreams", s.url))
        .await
        .unwrap();
    b.shot("03-upstreams").await;
    let foreign = fake.seed_pat("mallory@x.org");
    b.fill("#token-dbx", &foreign.value).await;
    b.click("form[action='/upstreams/dbx/credential'] button")
        .await;
    b.wait_text("identity_mismatch").await;
    b.shot("04-upstream-identity-mismatch").await;
    let pat = fake.seed_pat(OPERATOR);
    b.fill("#token-dbx", &pat.value).await;
    b.click("form[action='/upstreams/dbx/credential'] button")
        .await;
    b.wait_path("/upstreams?ok=credential").await;
    b.wait_text("valid").await;
    b.shot("05-upstream-valid").await;
    assert!(
        !fake.token(&pat.id).live(clock_now(s)),
        "the pasted token was revoked"
    );
    b.fill("#token-dbx", &fake.seed_pat(OPERATOR).value).await;
    b.click("form[action='/upstreams/dbx/credential'] button")
        .await;
    b.wait_text("409").await;
    b.shot("06-upstream-409").await;

    // The inbox is open; an agent asks for a gated verb; the request
    // appears without a reload (the marker set on this page survives).
    b.client
        .goto(&format!("{}/approvals", s.url))
        .await
        .unwrap();
    b.wait_text("Live: new requests appear here").await;
    b.script("window.__sameDocument = 'yes'; return null;")
        .await;
    let bot = agent_token(s, &session, "bot", "secrets:write").await;
    let id = held_secret_write(s, &bot, "DEPLOY_KEY").await;
    let row = format!("tr[data-approval='{id}']");
    b.client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&row))
        .await
        .unwrap();
    assert_eq!(
        b.script("return window.__sameDocument || null;").await,
        json!("yes"),
        "no reload"
    );
    b.shot("07-inbox-live-request").await;

    // Review and approve, with a reason that carries script.
    b.click(&format!("{row} a")).await;
    b.wait_path(&format!("/approvals/{id}")).await;
    b.wait_text("DEPLOY_KEY").await;
    b.shot("08-approval-detail").await;
    b.fill("#reason", PAYLOAD).await;
    b.click("button[name=decision][value=approve]").await;
    b.wait_path(&format!("/approvals/{id}?ok=decided")).await;
    b.wait_text("executed").await;
    b.shot("09-approval-executed").await;
    let (status, polled) = s
        .json(
            Method::GET,
            &format!("/v1/approvals/{id}"),
            Some(&bot),
            None,
        )
        .await;
    assert_eq!(status, 200, "{polled}");
    assert_eq!(polled["status"], "executed", "the agent's poll sees it run");
    // The payload is shown as text and ran nowhere.
    assert_eq!(b.script("return window.__xss || null;").await, Value::Null);
    let text = b
        .client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("<script>window.__xss=1</script>"), "{text}");
    b.client.goto(&format!("{}/audit", s.url)).await.unwrap();
    b.wait_text("approval.decide").await;
    assert_eq!(b.script("return window.__xss || null;").await, Value::Null);
    b.shot("10-audit").await;
    b.click("input[name=verify] + button").await;
    b.wait_text("Chain intact").await;
    b.shot("11-audit-verified").await;

    // A form whose CSRF token was tampered with is refused; nothing written.
    b.client.goto(&format!("{}/secrets", s.url)).await.unwrap();
    b.fill("#name", "TAMPERED").await;
    b.fill("#value", "never-stored").await;
    b.script("document.querySelector(\"form[action='/secrets'] input[name=csrf_token]\").value = 'forged'; return null;")
        .await;
    b.click("form[action='/secrets'] button[type=submit]").await;
    b.wait_text("Something was refused").await;
    b.wait_text("csrf").await;
    b.shot("12-csrf-refused").await;
    let (_, secrets) = s
        .json(Method::GET, "/v1/secrets", Some(&session), None)
        .await;
    assert!(!secrets.to_string().contains("TAMPERED"), "{secrets}");
    b.client.goto(&format!("{}/secrets", s.url)).await.unwrap();
    b.fill("#name", "GITHUB_TOKEN").await;
    b.fill("#value", "ghp_example").await;
    b.fill("#allowed_hosts", "api.github.com").await;
    b.click("form[action='/secrets'] button[type=submit]").await;
    b.wait_path("/secrets?ok=written").await;
    b.wait_text("GITHUB_TOKEN").await;
    assert!(!b.client.source().await.unwrap().contains("ghp_example"));
    b.shot("13-secrets").await;

    for (path, name, expect) in [
        ("/agents", "14-agents", "bot"),
        ("/tokens", "15-tokens", "Revoke all of bot"),
    ] {
        b.client.goto(&format!("{}{path}", s.url)).await.unwrap();
        b.wait_text(expect).await;
        b.shot(name).await;
    }

    // Signing out revokes the session: its token is 401 afterwards.
    b.click("header form[action='/logout'] button").await;
    b.wait_path("/login").await;
    b.shot("16-signed-out").await;
    assert_eq!(
        s.json(Method::GET, "/v1/auth/whoami", Some(&session), None)
            .await
            .0,
        401
    );
    b.client
        .goto(&format!("{}/approvals", s.url))
        .await
        .unwrap();
    b.wait_path("/login").await;
}

fn clock_now(s: &TestServer) -> i64 {
    s.clock.now()
}
