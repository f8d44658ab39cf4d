//! The HTTP API end to end: a real server on an ephemeral port, on SQLite
//! and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::{header, Method};
use serde_json::{json, Value};
use support::{server, server_with, Engine, NowForTest};

use gatehouse_api::router::{route_specs, Access};
use gatehouse_domain::audit::verify_chain;
use gatehouse_domain::Email;

async fn claim_makes_the_claimant_operator_once(engine: Engine) {
    let s = server(engine).await;
    let code = s.code.clone().unwrap();
    let bootstrap_file = s.dir.path().join("bootstrap.code");
    assert!(bootstrap_file.exists());
    let r = s
        .call(
            Method::POST,
            "/v1/bootstrap/claim",
            None,
            Some(json!({"code": code, "email": "Op@Example.COM"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let cookie = r
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("gatehouse_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "loopback listener: no Secure flag"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email"], "op@example.com");
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(!bootstrap_file.exists(), "the used code file is removed");

    let token = body["token"].as_str().unwrap();
    let (status, me) = s
        .json(Method::GET, "/v1/auth/whoami", Some(token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["owner"], "op@example.com");
    assert_eq!(me["cls"], "session");
    assert!(me["scope"].as_str().unwrap().contains("approval:bypass"));
    assert_eq!(me["jti"].as_str().unwrap().len(), 22);
    assert!(me["exp"].as_i64().unwrap() > 0);

    // The cookie alone authenticates too.
    let session = cookie.split(';').next().unwrap().to_string();
    let r = s
        .client
        .get(format!("{}/v1/auth/whoami", s.url))
        .header(header::COOKIE, session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (status, body) = s
        .json(
            Method::POST,
            "/v1/bootstrap/claim",
            None,
            Some(json!({"code": code, "email": "eve@x.org"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
}

async fn wrong_codes_are_refused_then_rate_limited(engine: Engine) {
    let s = server(engine).await;
    let claim = |code: String| {
        s.json(
            Method::POST,
            "/v1/bootstrap/claim",
            None,
            Some(json!({"code": code, "email": "a@x.org"})),
        )
    };
    for _ in 0..5 {
        let (status, body) = claim("WRONG-CODE".into()).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "wrong_code");
    }
    let (status, _) = claim("WRONG-CODE".into()).await;
    assert_eq!(status, 429);
    let (status, _) = claim(s.code.clone().unwrap()).await;
    assert_eq!(
        status, 429,
        "blocked even with the right code until the window passes"
    );
    s.clock.advance(61);
    let (status, body) = claim(s.code.clone().unwrap()).await;
    assert_eq!(status, 201, "{body}");
}

/// `POST /v1/login`: five wrong codes from one address, then `429` with
/// `Retry-After`, even for the right code, until the window has passed.
async fn wrong_login_codes_are_rate_limited(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/owners",
            Some(&op),
            Some(json!({"email": "alice@x.org"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let code = body["login_code"].as_str().unwrap().to_string();
    let login = |code: String| {
        s.call(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({"email": "alice@x.org", "code": code})),
        )
    };
    for _ in 0..5 {
        assert_eq!(login("WRONG".into()).await.status(), 401);
    }
    for attempt in ["WRONG".to_string(), code.clone()] {
        let r = login(attempt).await;
        assert_eq!(r.status(), 429);
        assert!(r.headers().contains_key(header::RETRY_AFTER));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    }
    s.clock.advance(61);
    let r = login(code).await;
    assert_eq!(r.status(), 200, "the code was never spent by the refusals");
}

async fn operator_adds_owners_who_log_in_with_a_one_time_code(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/owners",
            Some(&op),
            Some(json!({"email": "Alice@X.org"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["email"], "alice@x.org");
    let code = body["login_code"].as_str().unwrap().to_string();

    let (status, _) = s
        .json(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({"email": "alice@x.org", "code": "nope"})),
        )
        .await;
    assert_eq!(status, 401);
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({"email": "ALICE@x.org", "code": code})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let alice = body["token"].as_str().unwrap().to_string();
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({"email": "alice@x.org", "code": code})),
        )
        .await;
    assert_eq!(status, 401, "a login code works once");

    let (status, me) = s
        .json(Method::GET, "/v1/auth/whoami", Some(&alice), None)
        .await;
    assert_eq!(status, 200);
    assert!(
        !me["scope"].as_str().unwrap().contains("approval:bypass"),
        "owners are not operators"
    );

    let (status, body) = s
        .json(
            Method::POST,
            "/v1/owners",
            Some(&alice),
            Some(json!({"email": "mallory@x.org"})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "operator_required");

    // Login codes expire after 24 h.
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/owners",
            Some(&op),
            Some(json!({"email": "carol@x.org"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let code = body["login_code"].as_str().unwrap().to_string();
    s.clock.advance(24 * 3600 + 1);
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({"email": "carol@x.org", "code": code})),
        )
        .await;
    assert_eq!(status, 401);
}

async fn secrets_are_written_listed_and_deleted_without_values(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let value = "ghp_TopSecretValue123";
    let (status, body) = s
        .json(
            Method::PUT,
            "/v1/secrets/GITHUB_TOKEN",
            Some(&op),
            Some(json!({"value": value, "allowed_hosts": ["API.github.com."], "inject": {"header": "Authorization", "format": "Bearer {value}"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["allowed_hosts"], json!(["api.github.com"]));
    assert!(!body.to_string().contains(value));
    let (status, _) = s.put_secret(&op, "GITHUB_TOKEN", "ghp_other").await;
    assert_eq!(status, 200, "replacing answers 200");

    let (status, list) = s.json(Method::GET, "/v1/secrets", Some(&op), None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "GITHUB_TOKEN");
    assert!(!list.to_string().contains("ghp_"), "{list}");

    let owner = Email::parse("op@x.org").unwrap();
    let opened = gatehouse_api::routes::secrets::open_for(s.state(), &owner, "GITHUB_TOKEN")
        .await
        .unwrap();
    assert_eq!(opened.expose(), b"ghp_other");

    let (status, _) = s
        .json(Method::DELETE, "/v1/secrets/GITHUB_TOKEN", Some(&op), None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = s
        .json(Method::DELETE, "/v1/secrets/GITHUB_TOKEN", Some(&op), None)
        .await;
    assert_eq!(status, 404, "{body}");

    let (status, audit) = s.json(Method::GET, "/v1/audit", Some(&op), None).await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "secret.write").count(), 2);
    assert!(actions.contains(&"secret.delete") && actions.contains(&"bootstrap.claim"));
    assert!(
        !audit.to_string().contains("ghp_"),
        "audit never holds values"
    );
}

async fn bad_secret_requests_are_refused_and_change_nothing(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let put_raw = |path: &str, body: Vec<u8>, content_type: Option<&str>| {
        let mut req = s
            .client
            .put(format!("{}{}", s.url, path))
            .bearer_auth(&op)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        req.send()
    };
    let json_ct = Some("application/json");
    let long_name = format!("/v1/secrets/{}", "x".repeat(129));
    let cases: Vec<(&str, Vec<u8>, Option<&str>, u16)> = vec![
        (
            "/v1/secrets/a%20b",
            br#"{"value":"v"}"#.to_vec(),
            json_ct,
            400,
        ),
        (
            "/v1/secrets/a%2Fb",
            br#"{"value":"v"}"#.to_vec(),
            json_ct,
            400,
        ),
        (
            long_name.as_str(),
            br#"{"value":"v"}"#.to_vec(),
            json_ct,
            400,
        ),
        ("/v1/secrets/OK", b"{\"value\":".to_vec(), json_ct, 400),
        ("/v1/secrets/OK", br#"{"value": 42}"#.to_vec(), json_ct, 400),
        (
            "/v1/secrets/OK",
            br#"{"value": "v", "allowed_hosts": "api.github.com"}"#.to_vec(),
            json_ct,
            400,
        ),
        (
            "/v1/secrets/OK",
            br#"{"value": "v", "surprise": true}"#.to_vec(),
            json_ct,
            400,
        ),
        ("/v1/secrets/OK", br#"{"value": ""}"#.to_vec(), json_ct, 400),
        (
            "/v1/secrets/OK",
            br#"{"value": "v", "allowed_hosts": ["http://x/"]}"#.to_vec(),
            json_ct,
            400,
        ),
        (
            "/v1/secrets/OK",
            br#"{"value": "v", "inject": {"header": "Bad Header", "format": "{value}"}}"#.to_vec(),
            json_ct,
            400,
        ),
        (
            "/v1/secrets/OK",
            br#"{"value": "v", "inject": {"header": "X-Key", "format": "no placeholder"}}"#
                .to_vec(),
            json_ct,
            400,
        ),
        ("/v1/secrets/OK", br#"{"value": "v"}"#.to_vec(), None, 415),
        (
            "/v1/secrets/OK",
            format!("{{\"value\":\"{}\"}}", "a".repeat(1024 * 1024 + 10)).into_bytes(),
            json_ct,
            413,
        ),
        (
            "/v1/secrets/OK",
            format!("{{\"value\":\"{}\"}}", "a".repeat(70 * 1024)).into_bytes(),
            json_ct,
            400,
        ),
    ];
    for (path, body, ct, want) in cases {
        let r = put_raw(path, body, ct).await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, want, "{path}: {text}");
        let err: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path}: error body is JSON: {text}"));
        assert!(
            err["error"]["code"].is_string() && err["error"]["message"].is_string(),
            "{text}"
        );
        assert!(!text.contains("42"), "no value echoed: {text}");
    }
    let (_, list) = s.json(Method::GET, "/v1/secrets", Some(&op), None).await;
    assert_eq!(list, json!([]), "nothing was written");
    let (_, audit) = s.json(Method::GET, "/v1/audit", Some(&op), None).await;
    assert!(!audit.to_string().contains("secret.write"));
}

async fn owners_never_see_each_others_secrets_or_audit(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let alice = s.owner(&op, "alice@x.org").await;
    let bob = s.owner(&op, "bob@x.org").await;
    assert_eq!(
        s.put_secret(&alice, "SHARED_NAME", "alice-value").await.0,
        201
    );
    assert_eq!(s.put_secret(&bob, "SHARED_NAME", "bob-value").await.0, 201);
    assert_eq!(s.put_secret(&bob, "BOB_ONLY", "b2").await.0, 201);

    let (_, list) = s.json(Method::GET, "/v1/secrets", Some(&alice), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, _) = s
        .json(Method::DELETE, "/v1/secrets/BOB_ONLY", Some(&alice), None)
        .await;
    assert_eq!(status, 404, "alice cannot delete bob's secret");

    let st = s.state();
    let a = Email::parse("alice@x.org").unwrap();
    let b = Email::parse("bob@x.org").unwrap();
    assert_eq!(
        gatehouse_api::routes::secrets::open_for(st, &a, "SHARED_NAME")
            .await
            .unwrap()
            .expose(),
        b"alice-value"
    );
    assert_eq!(
        gatehouse_api::routes::secrets::open_for(st, &b, "SHARED_NAME")
            .await
            .unwrap()
            .expose(),
        b"bob-value"
    );
    assert!(gatehouse_api::routes::secrets::open_for(st, &a, "BOB_ONLY")
        .await
        .is_none());

    let (_, audit) = s.json(Method::GET, "/v1/audit", Some(&alice), None).await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["owner"] == "alice@x.org"),
        "{audit}"
    );
    let (_, all) = s
        .json(Method::GET, "/v1/audit?limit=1000", Some(&op), None)
        .await;
    let owners: std::collections::BTreeSet<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["owner"].as_str().unwrap())
        .collect();
    assert!(
        owners.contains("bob@x.org") && owners.contains("alice@x.org"),
        "operator sees all"
    );

    let (status, _) = s
        .json(Method::GET, "/v1/audit?limit=abc", Some(&op), None)
        .await;
    assert_eq!(status, 400);
    let (status, _) = s
        .json(Method::GET, "/v1/audit?limit=100000", Some(&op), None)
        .await;
    assert_eq!(status, 400);
}

async fn ciphertext_copied_to_another_owner_does_not_decrypt(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let alice = s.owner(&op, "alice@x.org").await;
    let _bob = s.owner(&op, "bob@x.org").await;
    assert_eq!(s.put_secret(&alice, "TOKEN", "alice-secret").await.0, 201);
    let copy = "INSERT INTO secrets (owner, name, sealed, allowed_hosts, inject, created_at, updated_at) \
                SELECT 'bob@x.org', name, sealed, allowed_hosts, inject, created_at, updated_at FROM secrets \
                WHERE owner = 'alice@x.org' AND name = 'TOKEN'";
    let rename = "INSERT INTO secrets (owner, name, sealed, allowed_hosts, inject, created_at, updated_at) \
                  SELECT owner, 'TOKEN2', sealed, allowed_hosts, inject, created_at, updated_at FROM secrets \
                  WHERE owner = 'alice@x.org' AND name = 'TOKEN'";
    match engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&s.database_url).await.unwrap();
            sqlx::query(copy).execute(&pool).await.unwrap();
            sqlx::query(rename).execute(&pool).await.unwrap();
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(&s.database_url).await.unwrap();
            sqlx::query(copy).execute(&pool).await.unwrap();
            sqlx::query(rename).execute(&pool).await.unwrap();
        }
    }
    let st = s.state();
    let a = Email::parse("alice@x.org").unwrap();
    let b = Email::parse("bob@x.org").unwrap();
    assert!(gatehouse_api::routes::secrets::open_for(st, &a, "TOKEN")
        .await
        .is_some());
    assert!(
        gatehouse_api::routes::secrets::open_for(st, &b, "TOKEN")
            .await
            .is_none(),
        "copied row must not open for bob"
    );
    assert!(
        gatehouse_api::routes::secrets::open_for(st, &a, "TOKEN2")
            .await
            .is_none(),
        "renamed row must not open"
    );
}

fn concrete(path: &str) -> String {
    path.replace("{name}", "SOME_NAME")
        .replace("{id}", "some-id")
        .replace("{host}", "api.example.com")
        .replace("{*path}", "v1/x")
}

async fn revoked_or_invalid_tokens_are_refused_on_every_route(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    // A token signed by a key this server does not know.
    let foreign = {
        let other = server(Engine::Sqlite).await;
        other.claim("op@x.org").await
    };
    let mut parts: Vec<&str> = op.split('.').collect();
    // Change one character in the middle of the signature, to a different one.
    let sig = parts[2];
    let swapped = if &sig[10..11] == "A" { "B" } else { "A" };
    let tampered_sig = format!("{}{}{}", &sig[..10], swapped, &sig[11..]);
    assert_ne!(tampered_sig, sig);
    parts[2] = &tampered_sig;
    let tampered = parts.join(".");
    let oversized = format!("{op}{}", "A".repeat(5000));
    // A valid token, then revoked by jti.
    s.json(
        Method::POST,
        "/v1/agents",
        Some(&op),
        Some(json!({"name": "bot"})),
    )
    .await;
    let (status, minted) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(&op),
            Some(json!({"class": "agent", "subject": "bot", "scope": "secrets:write tokens:write jobs:create jobs:read hooks:write audit:read"})),
        )
        .await;
    assert_eq!(status, 201, "{minted}");
    let revoked = minted["token"].as_str().unwrap().to_string();
    let (_, me) = s
        .json(Method::GET, "/v1/auth/whoami", Some(&revoked), None)
        .await;
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&op),
            Some(json!({"jti": me["jti"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let specs = route_specs();
    let mut checked = 0;
    for spec in specs.iter().filter(|r| r.access == Access::Authenticated) {
        let path = concrete(spec.path);
        for bad in [
            None,
            Some("garbage"),
            Some(foreign.as_str()),
            Some(tampered.as_str()),
            Some(oversized.as_str()),
            Some(revoked.as_str()),
        ] {
            let r = s
                .call(spec.method.clone(), &path, bad, Some(json!({})))
                .await;
            assert_eq!(
                r.status(),
                401,
                "{} {} with {:?}",
                spec.method,
                spec.path,
                bad.map(|b| &b[..b.len().min(12)])
            );
        }
        let r = s
            .client
            .request(spec.method.clone(), format!("{}{}", s.url, path))
            .header(header::AUTHORIZATION, format!("Basic {op}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "non-bearer scheme on {}", spec.path);
        checked += 1;
    }
    assert!(checked >= 10, "the table lists the authenticated routes");
    let public: Vec<String> = specs
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        public,
        vec![
            "GET /healthz",
            "GET /readyz",
            "GET /.well-known/jwks.json",
            "GET /metrics",
            "GET /v1/openapi.json",
            "POST /v1/bootstrap/claim",
            "POST /v1/login",
            "POST /hooks/{id}",
            "GET /v1/egress/ca.pem",
        ],
        "a new public route must be added here on purpose"
    );
}

async fn trusted_proxy_header_is_honoured_only_from_trusted_peers(engine: Engine) {
    let trusting = server_with(
        engine,
        &[
            ("GATEHOUSE_IDENTITY_TRUSTED_PROXY_CIDRS", "127.0.0.0/8"),
            ("GATEHOUSE_IDENTITY_HEADER", "X-Forwarded-Email"),
        ],
    )
    .await;
    trusting.claim("op@x.org").await;
    let whoami = |s: &support::TestServer, email: &'static str| {
        s.client
            .get(format!("{}/v1/auth/whoami", s.url))
            .header("X-Forwarded-Email", email)
            .send()
    };
    let r = whoami(&trusting, "OP@x.org").await.unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["owner"], "op@x.org");
    assert_eq!(me["cls"], "session");
    let r = whoami(&trusting, "stranger@x.org").await.unwrap();
    assert_eq!(
        r.status(),
        403,
        "an identity that is not an owner is not guessed"
    );

    let untrusting = server_with(
        engine,
        &[
            ("GATEHOUSE_IDENTITY_TRUSTED_PROXY_CIDRS", "10.0.0.0/8"),
            ("GATEHOUSE_IDENTITY_HEADER", "X-Forwarded-Email"),
        ],
    )
    .await;
    untrusting.claim("op@x.org").await;
    let r = whoami(&untrusting, "op@x.org").await.unwrap();
    assert_eq!(r.status(), 401, "header from an untrusted peer is ignored");
}

/// The audit hash as documented (ARCHITECTURE.md, "Audit chain"),
/// recomputed here without the writer's code: SHA-256 over the domain tag
/// `gatehouse/v1/audit-record`, then each field as an 8-byte big-endian
/// length and its UTF-8 bytes, in the order seq, ts (decimal), actor,
/// cls, owner, action, target, outcome, request_id, prev_hash.
fn independent_audit_hash(r: &Value) -> String {
    use sha2::{Digest, Sha256};
    let text = |k: &str| -> String {
        match &r[k] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!("{k} is {other}"),
        }
    };
    let mut h = Sha256::new();
    h.update(b"gatehouse/v1/audit-record");
    for k in [
        "seq",
        "ts",
        "actor",
        "cls",
        "owner",
        "action",
        "target",
        "outcome",
        "request_id",
        "prev_hash",
    ] {
        let v = text(k);
        h.update((v.len() as u64).to_be_bytes());
        h.update(v.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

async fn audit_chain_of_a_full_flow_verifies(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let alice = s.owner(&op, "alice@x.org").await;
    let (status, body) = s.put_secret(&alice, "A", "1").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = s
        .json(Method::DELETE, "/v1/secrets/A", Some(&alice), None)
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/bootstrap/claim",
            None,
            Some(json!({"code": "bad", "email": "x@x.org"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (records, head) = s.state().store.audit_all().await.unwrap();
    assert!(records.len() >= 6, "{}", records.len());
    assert_eq!(
        verify_chain(&records, Some(&head)).unwrap(),
        records.len() as u64
    );

    // The operator's export of the whole log, checked from scratch.
    let (status, all) = s
        .json(Method::GET, "/v1/audit?limit=1000", Some(&op), None)
        .await;
    assert_eq!(status, 200, "{all}");
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), records.len());
    let mut prev = "0".repeat(64);
    for (n, r) in all.iter().enumerate() {
        assert_eq!(r["seq"].as_i64(), Some(n as i64 + 1), "{r}");
        assert_eq!(r["prev_hash"].as_str(), Some(prev.as_str()), "{r}");
        let hash = independent_audit_hash(r);
        assert_eq!(r["hash"].as_str(), Some(hash.as_str()), "{r}");
        prev = hash;
    }
    assert_eq!(head.hash, prev, "the head is the last record's hash");
    let actions: Vec<&str> = all.iter().map(|r| r["action"].as_str().unwrap()).collect();
    for action in ["secret.write", "secret.delete"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }

    let (status, page) = s
        .json(
            Method::GET,
            "/v1/audit?since_seq=2&limit=2",
            Some(&op),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let seqs: Vec<i64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![3, 4]);
}

async fn health_readiness_and_keys_are_public(engine: Engine) {
    let s = server(engine).await;
    assert_eq!(s.json(Method::GET, "/healthz", None, None).await.0, 200);
    assert_eq!(s.json(Method::GET, "/readyz", None, None).await.0, 200);
    let (status, jwks) = s
        .json(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(status, 200);
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert!(key.get("d").is_none(), "never the private half");
    let (status, body) = s.json(Method::GET, "/v1/nothing-here", None, None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

async fn sessions_expire_with_the_clock(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    s.clock.advance(12 * 3600 + 29);
    assert_eq!(
        s.json(Method::GET, "/v1/auth/whoami", Some(&op), None)
            .await
            .0,
        200,
        "within skew"
    );
    s.clock.advance(2);
    assert_eq!(
        s.json(Method::GET, "/v1/auth/whoami", Some(&op), None)
            .await
            .0,
        401
    );
}

async fn tokens_are_minted_within_class_limits_and_listed_without_values(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let mint = |body: Value| s.json(Method::POST, "/v1/tokens", Some(&op), Some(body));
    let (status, body) =
        mint(json!({"class": "agent", "subject": "claude", "scope": "jobs:create"})).await;
    assert_eq!(status, 422, "agent not registered: {body}");
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(&op),
            Some(json!({"name": "claude"})),
        )
        .await;
    assert_eq!((status, body["name"].as_str()), (201, Some("claude")));
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(&op),
            Some(json!({"name": "claude"})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(&op),
            Some(json!({"name": "Bad Name"})),
        )
        .await;
    assert_eq!(status, 400);

    let (status, body) =
        mint(json!({"class": "agent", "subject": "claude", "ttl_seconds": 86401})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("86400"),
        "names the limit: {body}"
    );
    let (status, body) =
        mint(json!({"class": "api", "subject": "ci", "ttl_seconds": 91 * 86400})).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = mint(json!({"class": "session", "subject": "x"})).await;
    assert_eq!(status, 400);
    let (status, _) =
        mint(json!({"class": "agent", "subject": "claude", "scope": "approval:bypass"})).await;
    assert_eq!(status, 400);
    let (status, _) = mint(json!({"class": "agent", "subject": "claude", "scope": "root"})).await;
    assert_eq!(status, 400);

    let (status, agent) =
        mint(json!({"class": "agent", "subject": "claude", "scope": "jobs:create jobs:read"}))
            .await;
    assert_eq!(status, 201, "{agent}");
    let agent_token = agent["token"].as_str().unwrap().to_string();
    assert_eq!(agent["jti"].as_str().unwrap().len(), 22);
    let (status, me) = s
        .json(Method::GET, "/v1/auth/whoami", Some(&agent_token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (me["cls"].as_str(), me["sub"].as_str()),
        (Some("agent"), Some("claude"))
    );
    assert!(
        me["exp"].as_i64().unwrap() - s.clock.now_for_test() <= 900 + 1,
        "agent default 15 min"
    );

    let (status, api) =
        mint(json!({"class": "api", "subject": "ci", "scope": "audit:read approval:bypass"})).await;
    assert_eq!(status, 201, "{api}");
    let api_token = api["token"].as_str().unwrap().to_string();
    let (status, _) = s
        .json(Method::GET, "/v1/audit", Some(&api_token), None)
        .await;
    assert_eq!(status, 200, "api token with audit:read reads the audit");
    let (status, body) = s
        .json(Method::GET, "/v1/audit", Some(&agent_token), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let (status, body) = s.put_secret(&api_token, "X", "v").await;
    assert_eq!(
        status, 403,
        "no non-interactive secret writes without approval: {body}"
    );
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(&api_token),
            Some(json!({"class": "api", "subject": "x"})),
        )
        .await;
    assert_eq!(status, 403, "tokens are minted by humans");

    let (status, list) = s.json(Method::GET, "/v1/tokens", Some(&op), None).await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(
        !text.contains(&agent_token) && !text.contains(&api_token) && !text.contains(&op),
        "never token values"
    );
    let classes: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["class"].as_str().unwrap())
        .collect();
    assert!(classes.contains(&"agent") && classes.contains(&"api") && classes.contains(&"session"));
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["revoked"] == false));

    // Owner isolation: alice sees only hers and cannot revoke others'.
    let alice = s.owner(&op, "alice@x.org").await;
    let (_, theirs) = s.json(Method::GET, "/v1/tokens", Some(&alice), None).await;
    assert_eq!(theirs.as_array().unwrap().len(), 1);
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&alice),
            Some(json!({"jti": agent["jti"]})),
        )
        .await;
    assert_eq!(status, 404, "another owner's token is not found");
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&alice),
            Some(json!({"owner": "op@x.org"})),
        )
        .await;
    assert_eq!(status, 403);

    let (status, body) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&op),
            Some(json!({"jti": agent["jti"]})),
        )
        .await;
    assert_eq!((status, body), (200, json!({"revoked": 1})));
    let (_, body) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&op),
            Some(json!({"jti": agent["jti"]})),
        )
        .await;
    assert_eq!(body, json!({"revoked": 0}), "already revoked");
    assert_eq!(
        s.json(Method::GET, "/v1/auth/whoami", Some(&agent_token), None)
            .await
            .0,
        401
    );
    let (_, list) = s.json(Method::GET, "/v1/tokens", Some(&op), None).await;
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["jti"] == agent["jti"])
        .unwrap()
        .clone();
    assert_eq!(entry["revoked"], true);
    for bad in [
        json!({}),
        json!({"jti": "a", "owner": "op@x.org"}),
        json!({"subject": ""}),
    ] {
        let (status, _) = s
            .json(
                Method::POST,
                "/v1/tokens/revoke",
                Some(&op),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(status, 400, "{bad}");
    }
}

async fn revoking_a_subject_or_an_owner_ends_all_their_tokens_but_not_later_ones(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    s.json(
        Method::POST,
        "/v1/agents",
        Some(&op),
        Some(json!({"name": "bot"})),
    )
    .await;
    let mint = || {
        s.json(
            Method::POST,
            "/v1/tokens",
            Some(&op),
            Some(json!({"class": "agent", "subject": "bot"})),
        )
    };
    let t1 = mint().await.1["token"].as_str().unwrap().to_string();
    let t2 = mint().await.1["token"].as_str().unwrap().to_string();
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&op),
            Some(json!({"subject": "bot"})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(body["revoked"]["all-before"].is_i64(), "{body}");
    for t in [&t1, &t2] {
        assert_eq!(
            s.json(Method::GET, "/v1/auth/whoami", Some(t), None)
                .await
                .0,
            401
        );
    }
    let t3 = mint().await.1["token"].as_str().unwrap().to_string();
    assert_eq!(
        s.json(Method::GET, "/v1/auth/whoami", Some(&t3), None)
            .await
            .0,
        200,
        "minted after: alive"
    );

    let alice = s.owner(&op, "alice@x.org").await;
    s.json(
        Method::POST,
        "/v1/agents",
        Some(&alice),
        Some(json!({"name": "helper"})),
    )
    .await;
    let (_, minted) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(&alice),
            Some(json!({"class": "agent", "subject": "helper"})),
        )
        .await;
    let alice2 = minted["token"].as_str().unwrap().to_string();
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&alice),
            Some(json!({"owner": "alice@x.org"})),
        )
        .await;
    assert_eq!(status, 200);
    for t in [&alice, &alice2] {
        assert_eq!(
            s.json(Method::GET, "/v1/auth/whoami", Some(t), None)
                .await
                .0,
            401,
            "sessions included"
        );
    }
    let (status, recovered) = s
        .json(
            Method::POST,
            "/v1/owners/alice@x.org/recover",
            Some(&op),
            None,
        )
        .await;
    assert_eq!(status, 200, "{recovered}");
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/login",
            None,
            Some(json!({"email": "alice@x.org", "code": recovered["login_code"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let alice3 = body["token"].as_str().unwrap().to_string();
    assert_eq!(
        s.json(Method::GET, "/v1/auth/whoami", Some(&alice3), None)
            .await
            .0,
        200,
        "a new login works at once"
    );
    assert_eq!(
        s.json(Method::GET, "/v1/auth/whoami", Some(&op), None)
            .await
            .0,
        200,
        "other owners untouched"
    );
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&op),
            Some(json!({"owner": "nobody@x.org"})),
        )
        .await;
    assert_eq!(status, 404);
}

async fn rename_table(s: &support::TestServer, engine: Engine, from: &str, to: &str) {
    let sql = format!("ALTER TABLE {from} RENAME TO {to}");
    match engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&s.database_url).await.unwrap();
            sqlx::query(&sql).execute(&pool).await.unwrap();
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(&s.database_url).await.unwrap();
            sqlx::query(&sql).execute(&pool).await.unwrap();
        }
    }
}

async fn a_replica_that_cannot_confirm_revocations_fails_closed(engine: Engine) {
    use std::time::{Duration, Instant};
    let s = server_with(
        engine,
        &[("GATEHOUSE_REVOCATION_MAX_STALENESS_SECONDS", "1")],
    )
    .await;
    let op = s.claim("op@x.org").await;
    assert_eq!(s.json(Method::GET, "/readyz", None, None).await.0, 200);
    // The revocation sync can no longer read; everything else still works.
    rename_table(&s, engine, "revocations", "revocations_away").await;
    let started = Instant::now();
    loop {
        let (status, body) = s
            .json(Method::GET, "/v1/auth/whoami", Some(&op), None)
            .await;
        if status == 503 {
            assert_eq!(body["error"]["code"], "unavailable");
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never failed closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before the staleness bound"
    );
    let (status, ready) = s.json(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (status, ready["revocations"].as_str()),
        (503, Some("stale"))
    );
    assert_eq!(
        s.json(Method::GET, "/healthz", None, None).await.0,
        200,
        "alive, just not trusting tokens"
    );
    rename_table(&s, engine, "revocations_away", "revocations").await;
    let started = Instant::now();
    while s
        .json(Method::GET, "/v1/auth/whoami", Some(&op), None)
        .await
        .0
        != 200
    {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.json(Method::GET, "/readyz", None, None).await.0, 200);
}

async fn refused_token_uses_are_audited_without_the_token(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let garbage = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZQ";
    assert_eq!(
        s.json(Method::GET, "/v1/auth/whoami", Some(garbage), None)
            .await
            .0,
        401
    );
    for _ in 0..30 {
        s.json(Method::GET, "/v1/auth/whoami", Some("x.y.z"), None)
            .await;
    }
    // The audit write is asynchronous; give it a moment.
    let mut refusals = Vec::new();
    for _ in 0..100 {
        let (_, audit) = s
            .json(Method::GET, "/v1/audit?limit=1000", Some(&op), None)
            .await;
        refusals = audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "token.use")
            .cloned()
            .collect();
        if refusals.len() >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(refusals.len(), 10, "refusal auditing is bounded per source");
    let text = serde_json::to_string(&refusals).unwrap();
    assert!(
        !text.contains("c2VjcmV0") && !text.contains(garbage),
        "{text}"
    );
    assert!(refusals[0]["outcome"]
        .as_str()
        .unwrap()
        .starts_with("denied:"));
    let (_, audit) = s
        .json(Method::GET, "/v1/audit?limit=1000", Some(&op), None)
        .await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"token.issue"));
}

async fn jwks(s: &support::TestServer) -> Vec<String> {
    let (_, body) = s
        .json(Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn rotated_signing_keys_verify_until_their_last_token_expires(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let st = s.state();
    let before = jwks(&s).await;
    assert_eq!(before.len(), 1);
    let now = s.clock.now_for_test();
    let new = st.master.new_signing_key(now);
    let event = gatehouse_domain::audit::AuditEvent::new("keys.rotate", "ok");
    let longest = gatehouse_api::keys::longest_token_lifetime();
    st.store
        .rotate_signing_key(&new, now + longest, event, now)
        .await
        .unwrap();
    st.auth
        .keys
        .load(st.store.as_ref(), &st.master, now)
        .await
        .unwrap();
    let after = jwks(&s).await;
    assert_eq!(after.len(), 2, "the old key stays published");
    assert!(after.contains(&new.kid));
    assert_eq!(
        s.json(Method::GET, "/v1/auth/whoami", Some(&op), None)
            .await
            .0,
        200,
        "old tokens still verify"
    );
    let fresh = s.owner(&op, "fresh@x.org").await;
    let header = fresh.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&gatehouse_domain::token::jws::b64_decode(header).unwrap()).unwrap();
    assert_eq!(
        header["kid"],
        new.kid.as_str(),
        "new tokens use the new key"
    );

    s.clock.advance(longest + 1);
    st.store
        .sweep_signing_keys(s.clock.now_for_test())
        .await
        .unwrap();
    st.auth
        .keys
        .load(st.store.as_ref(), &st.master, s.clock.now_for_test())
        .await
        .unwrap();
    assert_eq!(
        jwks(&s).await,
        vec![new.kid.clone()],
        "the old key leaves once its tokens are all expired"
    );
}

/// A documented path with each `{param}` (and `{*rest}`) filled in.
fn concrete_path(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').unwrap() + open;
        out.push_str("x1");
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

async fn metrics_and_openapi_describe_the_running_server(engine: Engine) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    s.json(Method::GET, "/v1/auth/whoami", Some("garbage"), None)
        .await;
    let r = s.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    // Histograms by route template, method and status class.
    assert!(
        text.contains(
            "gatehouse_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/auth/whoami\",status=\"4xx\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("# TYPE gatehouse_store_call_duration_seconds histogram"),
        "{text}"
    );
    assert!(text.contains("gatehouse_revocation_view_fresh 1"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("gatehouse_token_refusals_total ") && !l.ends_with(" 0")),
        "{text}"
    );
    assert!(
        !text.contains("op@x.org") && !text.contains(&op),
        "no owners or tokens in metrics"
    );

    let (status, doc) = s.json(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    // The document against the running router itself: every documented
    // operation is served (not the fallback, not 405), asks a credential
    // exactly when the document says so, and on a documented path every
    // other method is 405, so no served operation is left out.
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 20, "{}", paths.len());
    for (path, ops) in paths {
        let concrete = concrete_path(path);
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let documented = ops.get(method.as_str().to_ascii_lowercase()).cloned();
            let (status, body) = s
                .json(method.clone(), &concrete, None, Some(json!({})))
                .await;
            let what = format!("{method} {path} answered {status} {body}");
            match documented {
                None => assert_eq!(status, 405, "{what}: served but not documented"),
                Some(op) => {
                    assert_ne!(status, 405, "{what}: documented but not served");
                    assert!(
                        !(status == 404 && body["error"]["message"] == "no such route"),
                        "{what}: documented but not served"
                    );
                    if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                        assert_eq!(status, 401, "{what}: a credential is documented");
                    }
                }
            }
        }
    }
    for spec in route_specs() {
        let path = gatehouse_api::openapi::openapi_path(spec.path);
        let op = &doc["paths"][&path][spec.method.as_str().to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{} {} missing from the document",
            spec.method,
            spec.path
        );
        let security = op["security"].as_array().expect("security is stated");
        assert_eq!(
            !security.is_empty(),
            spec.access == Access::Authenticated,
            "{}",
            spec.path
        );
    }
}

on_both_engines!(
    claim_makes_the_claimant_operator_once,
    wrong_codes_are_refused_then_rate_limited,
    wrong_login_codes_are_rate_limited,
    operator_adds_owners_who_log_in_with_a_one_time_code,
    secrets_are_written_listed_and_deleted_without_values,
    bad_secret_requests_are_refused_and_change_nothing,
    owners_never_see_each_others_secrets_or_audit,
    ciphertext_copied_to_another_owner_does_not_decrypt,
    revoked_or_invalid_tokens_are_refused_on_every_route,
    tokens_are_minted_within_class_limits_and_listed_without_values,
    revoking_a_subject_or_an_owner_ends_all_their_tokens_but_not_later_ones,
    a_replica_that_cannot_confirm_revocations_fails_closed,
    refused_token_uses_are_audited_without_the_token,
    trusted_proxy_header_is_honoured_only_from_trusted_peers,
    audit_chain_of_a_full_flow_verifies,
    health_readiness_and_keys_are_public,
    sessions_expire_with_the_clock,
    metrics_and_openapi_describe_the_running_server,
    rotated_signing_keys_verify_until_their_last_token_expires,
);
