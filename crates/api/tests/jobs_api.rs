//! Jobs and per-job credentials, end to end on SQLite and PostgreSQL:
//! tenant isolation that fails closed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{server, server_with, Engine, TestServer};

async fn sql(s: &TestServer, engine: Engine, statement: &str) {
    match engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&s.database_url).await.unwrap();
            sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(&s.database_url).await.unwrap();
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
    }
}

async fn agent(s: &TestServer, token: &str, name: &str) {
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(token),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn job(s: &TestServer, token: &str, body: Value) -> Value {
    let (status, created) = s
        .json(Method::POST, "/v1/jobs", Some(token), Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn credentials(s: &TestServer, job_token: &str) -> (u16, String) {
    let r = s
        .call(Method::GET, "/v1/job/credentials", Some(job_token), None)
        .await;
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Operator, alice and bob, each with an agent "bot" and a secret "TOKEN".
async fn two_tenants(engine: Engine) -> (TestServer, String, String, String) {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let alice = s.owner(&op, "alice@x.org").await;
    let bob = s.owner(&op, "bob@x.org").await;
    for (t, v) in [(&alice, "alice-value"), (&bob, "bob-value")] {
        agent(&s, t, "bot").await;
        assert_eq!(s.put_secret(t, "TOKEN", v).await.0, 201);
    }
    (s, op, alice, bob)
}

async fn a_job_reads_only_its_creators_secret_even_with_the_same_name(engine: Engine) {
    let (s, _op, alice, bob) = two_tenants(engine).await;
    let grant = json!({"agent": "bot", "grants": [{"env_var": "TOKEN", "secret": "TOKEN", "mode": "value"}]});
    let a = job(&s, &alice, grant.clone()).await;
    let b = job(&s, &bob, grant).await;
    let (status, body) = credentials(&s, a["job_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!([{"env_var": "TOKEN", "value": "alice-value"}])
    );
    let (_, body) = credentials(&s, b["job_token"].as_str().unwrap()).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!([{"env_var": "TOKEN", "value": "bob-value"}])
    );
    // Alice cannot see or delete Bob's job: it does not exist for her.
    let path = format!("/v1/jobs/{}", b["job_id"].as_str().unwrap());
    assert_eq!(s.json(Method::GET, &path, Some(&alice), None).await.0, 404);
    assert_eq!(
        s.json(Method::DELETE, &path, Some(&alice), None).await.0,
        404
    );
    let (_, mine) = s.json(Method::GET, "/v1/jobs", Some(&alice), None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    // Her 404s touched nothing: Bob's job is still listed, live, and its
    // token still reads his value.
    let (status, theirs) = s.json(Method::GET, &path, Some(&bob), None).await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs["deleted"], false, "{theirs}");
    let (status, body) = credentials(&s, b["job_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!([{"env_var": "TOKEN", "value": "bob-value"}])
    );
}

async fn every_failure_kind_gives_the_same_403(engine: Engine) {
    let (s, op, alice, _bob) = two_tenants(engine).await;
    let grant = json!({"agent": "bot", "grants": [{"env_var": "TOKEN", "secret": "TOKEN", "mode": "value"}]});
    let mut bodies = Vec::new();

    // Secret deleted after the job was created.
    let j = job(&s, &alice, grant.clone()).await;
    assert_eq!(
        s.json(Method::DELETE, "/v1/secrets/TOKEN", Some(&alice), None)
            .await
            .0,
        204
    );
    bodies.push((
        "secret missing",
        credentials(&s, j["job_token"].as_str().unwrap()).await,
    ));
    assert_eq!(s.put_secret(&alice, "TOKEN", "alice-value").await.0, 201);

    // Grant row gone.
    let j = job(&s, &alice, grant.clone()).await;
    sql(
        &s,
        engine,
        &format!(
            "DELETE FROM job_grants WHERE job_id = '{}'",
            j["job_id"].as_str().unwrap()
        ),
    )
    .await;
    bodies.push((
        "grant missing",
        credentials(&s, j["job_token"].as_str().unwrap()).await,
    ));

    // Value that no longer decrypts.
    let j = job(&s, &alice, grant.clone()).await;
    // Flip the last byte of the sealed value (inside the AEAD tag).
    let tamper = match engine {
        Engine::Sqlite => {
            "UPDATE secrets SET sealed = substr(sealed, 1, length(sealed) - 1) || \
             CASE WHEN substr(sealed, -1) = X'00' THEN X'01' ELSE X'00' END WHERE owner = 'alice@x.org'"
        }
        Engine::Postgres => {
            "UPDATE secrets SET sealed = set_byte(sealed, length(sealed) - 1, \
             (get_byte(sealed, length(sealed) - 1) + 1) % 256) WHERE owner = 'alice@x.org'"
        }
    };
    sql(&s, engine, tamper).await;
    bodies.push((
        "decrypt failure",
        credentials(&s, j["job_token"].as_str().unwrap()).await,
    ));

    // Owner gone (deprovisioned directly in the store).
    let j = job(&s, &alice, json!({"agent": "bot"})).await;
    sql(&s, engine, "DELETE FROM owners WHERE email = 'alice@x.org'").await;
    bodies.push((
        "owner unknown",
        credentials(&s, j["job_token"].as_str().unwrap()).await,
    ));

    // The operator's own session is not a job token.
    bodies.push(("operator session", credentials(&s, &op).await));

    let (first_status, first_body) = bodies[0].1.clone();
    assert_eq!(first_status, 403);
    assert_eq!(
        serde_json::from_str::<Value>(&first_body).unwrap()["error"]["code"],
        "forbidden"
    );
    for (kind, (status, body)) in &bodies {
        assert_eq!(
            (*status, body),
            (403, &first_body),
            "{kind} must look like every other failure"
        );
    }
    let (_, audit) = s
        .json(Method::GET, "/v1/audit?limit=1000", Some(&op), None)
        .await;
    let outcomes: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "credentials.resolve")
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| *o == "denied:forbidden"),
        "{outcomes:?}"
    );
}

async fn bad_job_requests_are_refused_naming_the_entry_and_write_nothing(engine: Engine) {
    let (s, _op, alice, _bob) = two_tenants(engine).await;
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"env_var": format!("V{i}"), "secret": "TOKEN"}))
        .collect();
    let long = "a".repeat(300);
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"agent": "bot", "grants": many}), 422, "at most 20"),
        (
            json!({"agent": "bot", "grants": [{"env_var": "LD_PRELOAD", "secret": "TOKEN"}]}),
            422,
            "LD_PRELOAD",
        ),
        (
            json!({"agent": "bot", "grants": [{"env_var": "PATH", "secret": "TOKEN"}]}),
            422,
            "PATH",
        ),
        (
            json!({"agent": "bot", "grants": [{"env_var": "DYLD_INSERT_LIBRARIES", "secret": "TOKEN"}]}),
            422,
            "DYLD_INSERT_LIBRARIES",
        ),
        (
            json!({"agent": "bot", "grants": [{"env_var": "lower", "secret": "TOKEN"}]}),
            422,
            "lower",
        ),
        (
            json!({"agent": "bot", "grants": [{"env_var": "GH", "secret": "NOPE"}]}),
            422,
            "NOPE",
        ),
        (
            json!({"agent": "bot", "grants": [{"env_var": "GH", "secret": "TOKEN", "mode": "raw"}]}),
            422,
            "mode",
        ),
        (json!({"agent": "ghost"}), 422, "ghost"),
        (json!({"agent": "bot", "ttl_seconds": 86401}), 400, "86400"),
        (
            json!({"agent": "bot", "egress": {"allow_hosts": ["http://evil/"]}}),
            422,
            "allow_hosts",
        ),
    ];
    for (body, want, named) in cases {
        let (status, answer) = s
            .json(Method::POST, "/v1/jobs", Some(&alice), Some(body.clone()))
            .await;
        assert_eq!(status, want, "{body}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(named),
            "{named}: {answer}"
        );
    }
    for bad in [
        "pkgs;builtins.exec \"x\"",
        "import ./evil.nix",
        "a && b",
        "${x}",
        "\"q\"",
        "has space",
        "..",
        "Upper",
        "",
        long.as_str(),
    ] {
        let (status, answer) = s
            .json(
                Method::POST,
                "/v1/jobs",
                Some(&alice),
                Some(json!({"agent": "bot", "packages": ["jq", bad]})),
            )
            .await;
        assert_eq!(status, 422, "{bad:?}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("package"),
            "{answer}"
        );
    }
    let (_, jobs) = s.json(Method::GET, "/v1/jobs", Some(&alice), None).await;
    assert_eq!(jobs, json!([]), "nothing was created");
    let ok = job(
        &s,
        &alice,
        json!({"agent": "bot", "packages": ["jq", "python3Packages.requests"]}),
    )
    .await;
    let (_, got) = s
        .json(
            Method::GET,
            &format!("/v1/jobs/{}", ok["job_id"].as_str().unwrap()),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(got["packages"], json!(["jq", "python3Packages.requests"]));
}

async fn placeholder_grants_are_bound_listed_and_expire(engine: Engine) {
    let s = server_with(
        engine,
        &[("GATEHOUSE_EGRESS_PLACEHOLDER_TTL_SECONDS", "600")],
    )
    .await;
    let op = s.claim("op@x.org").await;
    agent(&s, &op, "bot").await;
    assert_eq!(s.put_secret(&op, "GH", "ghp_real").await.0, 201);
    let j = job(
        &s,
        &op,
        json!({"agent": "bot", "grants": [{"env_var": "GITHUB_TOKEN", "secret": "GH"}, {"env_var": "GH_VALUE", "secret": "GH", "mode": "value"}]}),
    )
    .await;
    let placeholder = j["env"]["GITHUB_TOKEN"].as_str().unwrap().to_string();
    assert!(
        placeholder.starts_with("gh_ph_") && placeholder.len() > 40,
        "{placeholder}"
    );
    assert!(
        j["env"].get("GH_VALUE").is_none(),
        "values are never in the creation answer"
    );
    assert!(!j.to_string().contains("ghp_real"));
    let token = j["job_token"].as_str().unwrap();
    let (status, body) = credentials(&s, token).await;
    assert_eq!(status, 200);
    let creds: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        creds,
        json!([{"env_var": "GH_VALUE", "value": "ghp_real"}, {"env_var": "GITHUB_TOKEN", "value": placeholder}])
    );
    let (_, listed) = s
        .json(
            Method::GET,
            &format!("/v1/jobs/{}", j["job_id"].as_str().unwrap()),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(
        listed["placeholders"][0]["placeholder"],
        placeholder.as_str()
    );
    assert_eq!(listed["placeholders"][0]["secret"], "GH");
    s.clock.advance(601);
    assert_eq!(
        credentials(&s, token).await.0,
        403,
        "an expired placeholder is a failure"
    );
    // A job without grants has nothing to give.
    let empty = job(&s, &op, json!({"agent": "bot"})).await;
    assert_eq!(
        credentials(&s, empty["job_token"].as_str().unwrap())
            .await
            .0,
        204
    );
}

async fn deleting_a_job_or_revoking_its_agent_ends_its_token_and_placeholders(engine: Engine) {
    let (s, _op, alice, _bob) = two_tenants(engine).await;
    let grant = json!({"agent": "bot", "grants": [{"env_var": "TOKEN", "secret": "TOKEN"}]});
    let j1 = job(&s, &alice, grant.clone()).await;
    let path = format!("/v1/jobs/{}", j1["job_id"].as_str().unwrap());
    assert_eq!(
        s.json(Method::DELETE, &path, Some(&alice), None).await.0,
        204
    );
    assert_eq!(
        credentials(&s, j1["job_token"].as_str().unwrap()).await.0,
        401,
        "token revoked"
    );
    let (_, got) = s.json(Method::GET, &path, Some(&alice), None).await;
    assert_eq!(
        (got["deleted"].clone(), got["placeholders"].clone()),
        (json!(true), json!([]))
    );
    assert_eq!(
        s.json(Method::DELETE, &path, Some(&alice), None).await.0,
        404
    );

    let j2 = job(&s, &alice, grant.clone()).await;
    let j3 = job(&s, &alice, grant).await;
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&alice),
            Some(json!({"subject": "bot"})),
        )
        .await;
    assert_eq!(status, 200);
    for j in [&j2, &j3] {
        assert_eq!(
            credentials(&s, j["job_token"].as_str().unwrap()).await.0,
            401,
            "the agent's jobs end with it"
        );
        let (_, got) = s
            .json(
                Method::GET,
                &format!("/v1/jobs/{}", j["job_id"].as_str().unwrap()),
                Some(&alice),
                None,
            )
            .await;
        assert_eq!(got["placeholders"], json!([]));
    }
}

async fn agents_create_jobs_for_themselves_and_expired_job_tokens_are_refused(engine: Engine) {
    let (s, _op, alice, _bob) = two_tenants(engine).await;
    agent(&s, &alice, "other").await;
    let mint = |scope: &str| {
        s.json(
            Method::POST,
            "/v1/tokens",
            Some(&alice),
            Some(json!({"class": "agent", "subject": "bot", "scope": scope})),
        )
    };
    let with_scope = mint("jobs:create jobs:read").await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let without = mint("jobs:read").await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let grant = json!({"agent": "bot", "grants": [{"env_var": "TOKEN", "secret": "TOKEN", "mode": "value"}]});
    // Grants of an agent's own jobs are held to its secret ceiling
    // (gates_api.rs); a job without grants needs none.
    let j = job(&s, &with_scope, json!({"agent": "bot"})).await;
    let (status, _) = credentials(&s, j["job_token"].as_str().unwrap()).await;
    assert_eq!(status, 204, "the agent's own job, with no grants");
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/jobs",
            Some(&with_scope),
            Some(json!({"agent": "other"})),
        )
        .await;
    assert_eq!(status, 403, "not for another agent");
    let (status, body) = s
        .json(Method::POST, "/v1/jobs", Some(&without), Some(grant))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let job_token = j["job_token"].as_str().unwrap();
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/jobs",
            Some(job_token),
            Some(json!({"agent": "bot"})),
        )
        .await;
    assert_eq!(status, 403, "a job token cannot create jobs");
    s.clock.advance(2 * 3600 + 31);
    assert_eq!(
        credentials(&s, job_token).await.0,
        401,
        "job tokens expire (2 h default)"
    );
}

on_both_engines!(
    a_job_reads_only_its_creators_secret_even_with_the_same_name,
    every_failure_kind_gives_the_same_403,
    bad_job_requests_are_refused_naming_the_entry_and_write_nothing,
    placeholder_grants_are_bound_listed_and_expire,
    deleting_a_job_or_revoking_its_agent_ends_its_token_and_placeholders,
    agents_create_jobs_for_themselves_and_expired_job_tokens_are_refused,
);
