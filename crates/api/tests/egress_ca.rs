//! One egress CA per installation, through real servers: replicas started
//! at once on one PostgreSQL serve the same CA and sign with it; a
//! rotation reaches running replicas (bundle = new + old), new leaves chain
//! to the new CA while clients holding only the old bundle keep connecting
//! (curl, through the cross certificate) until the overlap ends; a data
//! directory's CA from before is imported once and removed; a store whose
//! CA was sealed under another master key is refused at start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_api::config::Config;
use gatehouse_api::server::{start, Running};
use gatehouse_domain::clock::{Clock, ManualClock, SystemClock};
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::master_key::encode_master_key;
use gatehouse_egress::test_support::{curl, tls_upstream, upstream_ca};
use reqwest::Method;
use serde_json::json;
use support::{server_with, Engine, TestServer};

/// How long a running replica may take to pick a rotation up
/// (`egress_ca::RELOAD_INTERVAL` is 2 s; the bound leaves room for a
/// loaded machine).
const PICKUP: Duration = Duration::from_secs(15);

fn env_for(database_url: &str, data_dir: &Path, key: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert("GATEHOUSE_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("GATEHOUSE_EGRESS_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("GATEHOUSE_DATA_DIR".into(), data_dir.display().to_string());
    env.insert("GATEHOUSE_DATABASE_URL".into(), database_url.into());
    env.insert("GATEHOUSE_MASTER_KEY".into(), key.into());
    env
}

async fn boot(env: &BTreeMap<String, String>) -> Result<Running, String> {
    let config = Config::load(None, env).unwrap();
    start(
        config,
        Arc::new(ManualClock::new(SystemClock.now())),
        std::future::pending(),
    )
    .await
    .map_err(|e| e.to_string())
}

fn master_key() -> String {
    encode_master_key(&SymmetricKey::generate())
        .trim()
        .to_string()
}

async fn ca_pem_of(client: &reqwest::Client, base: &str) -> String {
    let r = client
        .get(format!("{base}/v1/egress/ca.pem"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn certificates(pem: &str) -> Vec<String> {
    pem.split_inclusive("-----END CERTIFICATE-----")
        .filter(|c| c.contains("BEGIN CERTIFICATE"))
        .map(|c| c.trim().to_string())
        .collect()
}

/// A TLS handshake with `server` as `host` by a client trusting only
/// `roots_pem`.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    roots_pem: &str,
    host: &str,
) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let serving = tokio::spawn(async move { acceptor.accept(b).await.map(|_| ()) });
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
    let outcome = tokio_rustls::TlsConnector::from(Arc::new(client))
        .connect(name, a)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let _ = serving.await;
    outcome
}

fn leaf_of(running: &Running, host: &str) -> Arc<rustls::ServerConfig> {
    running
        .state
        .egress
        .get()
        .unwrap()
        .ca
        .as_ref()
        .unwrap()
        .server_config(host)
        .unwrap()
}

fn holds_a_ca_key(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let e = e.unwrap();
        e.file_name().to_string_lossy().contains("ca.key")
            || std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("PRIVATE KEY"))
    })
}

#[tokio::test]
async fn replicas_started_at_once_on_postgres_serve_and_sign_with_one_ca() {
    let url = gatehouse_store::test_support::fresh_postgres_url().await;
    let key = master_key();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let envs: Vec<_> = dirs.iter().map(|d| env_for(&url, d.path(), &key)).collect();
    let (a, b, c) = tokio::join!(boot(&envs[0]), boot(&envs[1]), boot(&envs[2]));
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let client = reqwest::Client::new();
    let pem_a = ca_pem_of(&client, &format!("http://{}", a.addr)).await;
    let pem_b = ca_pem_of(&client, &format!("http://{}", b.addr)).await;
    let pem_c = ca_pem_of(&client, &format!("http://{}", c.addr)).await;
    assert_eq!(certificates(&pem_a).len(), 1);
    assert_eq!(pem_a, pem_b);
    assert_eq!(pem_a, pem_c);
    // A leaf minted by B verifies against the bundle fetched from A.
    handshake(leaf_of(&b, "api.test"), &pem_a, "api.test")
        .await
        .unwrap();
    handshake(leaf_of(&c, "10.1.2.3"), &pem_a, "10.1.2.3")
        .await
        .unwrap();
    for d in &dirs {
        assert!(!holds_a_ca_key(d.path()), "no CA key in a data directory");
    }
    // One creation in the audit log, whoever won.
    let (records, _) = a.state.store.audit_all().await.unwrap();
    let created = records
        .iter()
        .filter(|r| r.action == "egress.ca_create")
        .count();
    assert_eq!(created, 1);
    for r in [a, b, c] {
        r.stop().await.unwrap();
    }
}

async fn wait_for_bundle(s: &TestServer, want: &str) {
    let deadline = Instant::now() + PICKUP;
    loop {
        let got = ca_pem_of(&s.client, &s.url).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} still serves {} certificate(s)",
            s.url,
            certificates(&got).len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An operator, a secret bound to `api.test` and a job holding its
/// placeholder, so `CONNECT api.test` is intercepted.
async fn job_for_api_test(s: &TestServer) -> (String, String) {
    let op = s.claim("op@x.org").await;
    let (status, body) = s
        .json(
            Method::PUT,
            "/v1/secrets/gh",
            Some(&op),
            Some(json!({"value": "ghp_real_value_for_the_ca_test", "allowed_hosts": ["api.test"]})),
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
    let (status, job) = s
        .json(
            Method::POST,
            "/v1/jobs",
            Some(&op),
            Some(
                json!({"agent": "bot", "grants": [{"env_var": "GH_TOKEN", "secret": "gh"}],
                        "egress": {"allow_hosts": ["api.test"]}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{job}");
    (
        job["job_token"].as_str().unwrap().to_string(),
        job["env"]["GH_TOKEN"].as_str().unwrap().to_string(),
    )
}

/// `curl https://api.test:<port>/user` through `s`'s proxy, trusting only
/// `bundle`: whether the intercepted TLS verified and the upstream answered.
async fn fetch_through(
    s: &TestServer,
    token: &str,
    placeholder: &str,
    port: u16,
    bundle: &str,
    name: &str,
) -> Result<(), String> {
    let file = s.dir.path().join(name);
    std::fs::write(&file, bundle).unwrap();
    let proxy = format!(
        "http://job:{token}@{}",
        s.running.as_ref().unwrap().proxy_addr
    );
    let (ok, out, err) = curl(&[
        "-x",
        &proxy,
        "--cacert",
        &file.display().to_string(),
        "-i",
        "-H",
        &format!("Authorization: Bearer {placeholder}"),
        &format!("https://api.test:{port}/user"),
    ])
    .await;
    if ok && out.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("{err}{}", out.lines().next().unwrap_or_default()))
    }
}

async fn rotation_reaches_running_replicas_and_old_bundles_work_until_the_overlap_ends(
    engine: Engine,
) {
    let upstream = upstream_ca();
    let (up, _seen) = tls_upstream(&upstream, &["api.test"]).await;
    let port = up.port().to_string();
    let roots = upstream.pem_file.display().to_string();
    let a = server_with(
        engine,
        &[
            ("GATEHOUSE_EGRESS_STATIC_HOSTS", "api.test=127.0.0.1"),
            ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8"),
            ("GATEHOUSE_EGRESS_EXTRA_ROOT_CERTS", &roots),
            ("GATEHOUSE_EGRESS_ALLOWED_PORTS", &port),
            ("GATEHOUSE_EGRESS_CA_OVERLAP_SECONDS", "60"),
        ],
    )
    .await;
    let (token, placeholder) = job_for_api_test(&a).await;
    // PostgreSQL: a second replica; SQLite is one process.
    let b = match engine {
        Engine::Postgres => Some(a.replica().await),
        Engine::Sqlite => None,
    };
    let servers: Vec<&TestServer> = std::iter::once(&a).chain(b.as_ref()).collect();
    let old_bundle = ca_pem_of(&a.client, &a.url).await;
    for s in &servers {
        fetch_through(s, &token, &placeholder, up.port(), &old_bundle, "old.pem")
            .await
            .unwrap();
    }

    // `gatehouse keys rotate-ca` runs this, against the store.
    let st = a.state();
    let mut event = gatehouse_domain::audit::AuditEvent::new("keys.rotate_ca", "ok");
    event.actor = "cli".into();
    let generation = gatehouse_api::egress_ca::rotate(
        st.store.as_ref(),
        &st.master,
        st.config.egress.ca_overlap_seconds,
        event,
        a.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(generation, 2);
    let rows = st.store.egress_cas().await.unwrap();
    let new_ca = rows[0].cert_pem.clone();
    let both = format!("{new_ca}{old_bundle}");
    for s in &servers {
        wait_for_bundle(s, &both).await;
    }
    for s in &servers {
        // New leaves chain to the new CA alone...
        fetch_through(s, &token, &placeholder, up.port(), &new_ca, "new.pem")
            .await
            .unwrap();
        // ...and a client that still holds the old bundle connects.
        fetch_through(s, &token, &placeholder, up.port(), &old_bundle, "old.pem")
            .await
            .unwrap();
        fetch_through(s, &token, &placeholder, up.port(), &both, "both.pem")
            .await
            .unwrap();
    }

    // The overlap ends (each replica's own clock; the job's token lives
    // longer than the minute): the old CA leaves the bundle and old
    // bundles stop verifying.
    a.clock.advance(61);
    if let Some(b) = &b {
        b.clock.advance(61);
    }
    for s in &servers {
        wait_for_bundle(s, &new_ca).await;
    }
    for s in &servers {
        fetch_through(s, &token, &placeholder, up.port(), &new_ca, "new.pem")
            .await
            .unwrap();
        let refused =
            fetch_through(s, &token, &placeholder, up.port(), &old_bundle, "old.pem").await;
        assert!(refused.is_err(), "the old CA is no longer trusted");
    }
}

on_both_engines!(rotation_reaches_running_replicas_and_old_bundles_work_until_the_overlap_ends);

#[tokio::test]
async fn a_data_directory_ca_from_before_is_imported_once_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    // What a server of the previous release left in its data directory.
    let before = gatehouse_egress::CertAuthority::load_or_create(dir.path()).unwrap();
    let old_pem = before.ca_pem();
    let url = gatehouse_store::test_support::sqlite_url(dir.path());
    let env = env_for(&url, dir.path(), &master_key());
    let running = boot(&env).await.unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://{}", running.addr);
    assert_eq!(
        ca_pem_of(&client, &base).await,
        old_pem,
        "agents' bundles keep working"
    );
    handshake(leaf_of(&running, "api.test"), &old_pem, "api.test")
        .await
        .unwrap();
    assert!(
        !holds_a_ca_key(dir.path()),
        "the key left the data directory"
    );
    let (records, _) = running.state.store.audit_all().await.unwrap();
    assert!(records.iter().any(|r| r.action == "egress.ca_import"));
    running.stop().await.unwrap();
    let again = boot(&env).await.unwrap();
    assert_eq!(
        ca_pem_of(&client, &format!("http://{}", again.addr)).await,
        old_pem
    );
    again.stop().await.unwrap();
}

#[tokio::test]
async fn a_store_whose_ca_is_sealed_under_another_master_key_is_refused_at_start() {
    let url = gatehouse_store::test_support::fresh_postgres_url().await;
    // A store holding nothing wrapped but the CA, sealed under key A.
    let store = gatehouse_store::connect(&url).await.unwrap();
    let a = gatehouse_api::keys::MasterKeys::new(SymmetricKey::generate(), Vec::new());
    let scratch = tempfile::tempdir().unwrap();
    gatehouse_api::egress_ca::load(store.as_ref(), &a, scratch.path(), SystemClock.now())
        .await
        .unwrap();
    assert_eq!(store.wrapped_keys().await.unwrap().len(), 1);
    drop(store);
    let wrong = master_key();
    let dir = tempfile::tempdir().unwrap();
    let err = boot(&env_for(&url, dir.path(), &wrong))
        .await
        .err()
        .expect("refused");
    assert!(err.contains("not loaded"), "{err}");
    assert!(err.contains("master key"), "{err}");
    assert!(
        err.contains(&a.current().key_id()),
        "names the key id: {err}"
    );
    assert!(!err.contains(&wrong), "never echoes the key");
}
