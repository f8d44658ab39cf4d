//! A real server on an ephemeral port, on SQLite or PostgreSQL, with a
//! manual clock the test can move.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use gatehouse_api::config::Config;
use gatehouse_api::server::{start_with, Running};
use gatehouse_domain::clock::{Clock, ManualClock, SystemClock};
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::master_key::encode_master_key;
use gatehouse_store::test_support::fresh_postgres_url;
use reqwest::{Client, Method, Response};
use serde_json::{json, Value};

/// Routes a test binary adds to every server it starts, through the one
/// router builder (the console's tests set `gatehouse_console::routes`).
pub static EXTRA_ROUTES: std::sync::OnceLock<fn() -> Vec<gatehouse_api::router::Route>> =
    std::sync::OnceLock::new();

#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub url: String,
    pub code: Option<String>,
    pub running: Option<Running>,
    pub clock: ManualClock,
    pub client: Client,
    pub dir: Arc<tempfile::TempDir>,
    pub database_url: String,
    /// The environment the server was configured from, for restarts and
    /// replicas.
    pub env: BTreeMap<String, String>,
    /// The configuration file text it was started with, if any.
    pub file: Option<String>,
}

pub async fn server(engine: Engine) -> TestServer {
    server_with(engine, &[]).await
}

pub async fn server_with(engine: Engine, extra: &[(&str, &str)]) -> TestServer {
    server_with_file(engine, extra, None).await
}

/// As [`server_with`], with configuration file text (for tables and
/// arrays the environment cannot set, like `[[upstream]]`).
pub async fn server_with_file(
    engine: Engine,
    extra: &[(&str, &str)],
    file: Option<&str>,
) -> TestServer {
    server_with_clock(engine, extra, file, ManualClock::new(SystemClock.now())).await
}

/// As [`server_with_file`], on a clock the caller already shares (with a
/// fake upstream, say).
pub async fn server_with_clock(
    engine: Engine,
    extra: &[(&str, &str)],
    file: Option<&str>,
    clock: ManualClock,
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match engine {
        Engine::Sqlite => gatehouse_store::test_support::sqlite_url(dir.path()),
        Engine::Postgres => fresh_postgres_url().await,
    };
    let key = encode_master_key(&SymmetricKey::generate())
        .trim()
        .to_string();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("GATEHOUSE_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("GATEHOUSE_EGRESS_LISTEN".into(), "127.0.0.1:0".into());
    env.insert(
        "GATEHOUSE_DATA_DIR".into(),
        dir.path().display().to_string(),
    );
    env.insert("GATEHOUSE_DATABASE_URL".into(), database_url.clone());
    env.insert("GATEHOUSE_MASTER_KEY".into(), key);
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    boot(
        env,
        file.map(str::to_string),
        clock,
        Arc::new(dir),
        database_url,
    )
    .await
}

async fn boot(
    env: BTreeMap<String, String>,
    file: Option<String>,
    clock: ManualClock,
    dir: Arc<tempfile::TempDir>,
    database_url: String,
) -> TestServer {
    let config = Config::load(file.as_deref().map(|f| ("test.toml", f)), &env).unwrap();
    let extra = EXTRA_ROUTES
        .get()
        .map(|routes| routes())
        .unwrap_or_default();
    let running = start_with(
        config,
        Arc::new(clock.clone()),
        std::future::pending(),
        extra,
    )
    .await
    .unwrap();
    TestServer {
        url: format!("http://{}", running.addr),
        code: running.bootstrap_code.clone(),
        running: Some(running),
        clock,
        client: Client::new(),
        dir,
        database_url,
        env,
        file,
    }
}

pub trait NowForTest {
    fn now_for_test(&self) -> i64;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> i64 {
        self.now()
    }
}

impl TestServer {
    /// Stops this server and starts a new one on the same store, master
    /// key, data directory and clock.
    pub async fn restart(mut self) -> TestServer {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
        boot(
            self.env.clone(),
            self.file.clone(),
            self.clock.clone(),
            self.dir.clone(),
            self.database_url.clone(),
        )
        .await
    }

    /// A second server on the same store and master key, with its own
    /// clock set to the same time: a replica.
    pub async fn replica(&self) -> TestServer {
        let clock = ManualClock::new(self.clock.now());
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut env = self.env.clone();
        env.insert(
            "GATEHOUSE_DATA_DIR".into(),
            dir.path().display().to_string(),
        );
        boot(
            env,
            self.file.clone(),
            clock,
            dir,
            self.database_url.clone(),
        )
        .await
    }

    pub fn state(&self) -> &gatehouse_api::state::AppState {
        &self.running.as_ref().unwrap().state
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, format!("{}{}", self.url, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let r = self.call(method, path, token, body).await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Claims the installation as `email`; returns the session token.
    pub async fn claim(&self, email: &str) -> String {
        let code = self.code.clone().expect("unclaimed server has a code");
        let (status, body) = self
            .json(
                Method::POST,
                "/v1/bootstrap/claim",
                None,
                Some(json!({"code": code, "email": email})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// Adds an owner as the operator and logs them in; returns their token.
    pub async fn owner(&self, operator: &str, email: &str) -> String {
        let (status, body) = self
            .json(
                Method::POST,
                "/v1/owners",
                Some(operator),
                Some(json!({"email": email})),
            )
            .await;
        assert!(status == 201 || status == 200, "{body}");
        let code = body["login_code"].as_str().unwrap();
        let (status, body) = self
            .json(
                Method::POST,
                "/v1/login",
                None,
                Some(json!({"email": email, "code": code})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    pub async fn put_secret(&self, token: &str, name: &str, value: &str) -> (u16, Value) {
        self.json(
            Method::PUT,
            &format!("/v1/secrets/{name}"),
            Some(token),
            Some(json!({"value": value, "allowed_hosts": ["api.github.com"]})),
        )
        .await
    }
}

/// Runs each named async test function on both engines.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::support::Engine::Sqlite).await })*
        }
        mod on_postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::support::Engine::Postgres).await })*
        }
    };
}
