//! What an agent may reach through jobs and approvals, end to end on
//! SQLite and PostgreSQL (SPEC §4, §5, §7): an agent's secret ceiling,
//! value grants held for a human, and what an approval produced for an
//! agent shown once to the requesting token and revoked with the agent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{server, Engine, NowForTest, TestServer};

const ALICE: &str = "alice@x.org";

struct World {
    s: TestServer,
    alice: String,
}

/// Alice with an agent "bot" and secrets TOKEN and OTHER.
async fn world(engine: Engine) -> World {
    let s = server(engine).await;
    let op = s.claim("op@x.org").await;
    let alice = s.owner(&op, ALICE).await;
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(&alice),
            Some(json!({"name": "bot"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(s.put_secret(&alice, "TOKEN", "alice-value").await.0, 201);
    assert_eq!(s.put_secret(&alice, "OTHER", "other-value").await.0, 201);
    World { s, alice }
}

impl World {
    async fn mint(&self, class: &str, subject: &str, scope: &str) -> String {
        let (status, body) = self
            .s
            .json(
                Method::POST,
                "/v1/tokens",
                Some(&self.alice),
                Some(json!({"class": class, "subject": subject, "scope": scope})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    async fn set_ceiling(&self, token: &str, secrets: Value) -> (u16, Value) {
        self.s
            .json(
                Method::PUT,
                "/v1/agents/bot/secrets",
                Some(token),
                Some(json!({ "secrets": secrets })),
            )
            .await
    }

    async fn ceiling(&self) -> Value {
        let (status, agents) = self
            .s
            .json(Method::GET, "/v1/agents", Some(&self.alice), None)
            .await;
        assert_eq!(status, 200, "{agents}");
        agents[0]["secrets"].clone()
    }

    async fn create_job(&self, token: &str, grants: Value) -> (u16, Value) {
        self.s
            .json(
                Method::POST,
                "/v1/jobs",
                Some(token),
                Some(json!({"agent": "bot", "grants": grants})),
            )
            .await
    }

    async fn job_count(&self) -> usize {
        let (status, jobs) = self
            .s
            .json(Method::GET, "/v1/jobs", Some(&self.alice), None)
            .await;
        assert_eq!(status, 200, "{jobs}");
        jobs.as_array().unwrap().len()
    }

    async fn approve(&self, id: &str) -> Value {
        let (status, body) = self
            .s
            .json(
                Method::POST,
                &format!("/v1/approvals/{id}/decision"),
                Some(&self.alice),
                Some(json!({"decision": "approve"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn poll(&self, token: &str, id: &str) -> Value {
        let (status, body) = self
            .s
            .json(
                Method::GET,
                &format!("/v1/approvals/{id}"),
                Some(token),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn revoke_agent(&self) {
        let (status, body) = self
            .s
            .json(
                Method::POST,
                "/v1/tokens/revoke",
                Some(&self.alice),
                Some(json!({"subject": "bot"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn whoami(&self, token: &str) -> (u16, Value) {
        self.s
            .json(Method::GET, "/v1/auth/whoami", Some(token), None)
            .await
    }
}

fn grant(env_var: &str, secret: &str, mode: &str) -> Value {
    json!({"env_var": env_var, "secret": secret, "mode": mode})
}

async fn an_agent_grants_only_secrets_a_human_put_in_its_ceiling(engine: Engine) {
    let w = world(engine).await;
    let bot = w
        .mint("agent", "bot", "jobs:create jobs:read tokens:write")
        .await;
    assert_eq!(w.ceiling().await, json!([]), "empty by default");

    // Outside the (empty) ceiling: refused, naming the env var, no job.
    let (status, body) = w
        .create_job(&bot, json!([grant("GH_TOKEN", "TOKEN", "placeholder")]))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "secret_not_grantable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("GH_TOKEN"), "{message}");
    assert!(!message.contains("alice-value"));
    assert_eq!(w.job_count().await, 0);

    // Bad ceilings are refused naming the entry; nothing changes.
    let (status, body) = w.set_ceiling(&w.alice, json!(["TOKEN", "no/slash"])).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no/slash"),
        "{body}"
    );
    let (status, body) =
        w.s.json(
            Method::PUT,
            "/v1/agents/bot/secrets",
            Some(&w.alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 400, "the field is required: {body}");
    let (status, _) =
        w.s.json(
            Method::PUT,
            "/v1/agents/nobody/secrets",
            Some(&w.alice),
            Some(json!({"secrets": []})),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(w.ceiling().await, json!([]));

    // The agent asking for its own ceiling waits for a human.
    let (status, held) = w.set_ceiling(&bot, json!(["TOKEN"])).await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(held["verb"], "policy.change");
    assert_eq!(w.ceiling().await, json!([]), "nothing while held");
    let decided = w.approve(held["approval_id"].as_str().unwrap()).await;
    assert_eq!(decided["status"], "executed", "{decided}");
    assert_eq!(w.ceiling().await, json!(["TOKEN"]));

    // Placeholder grants within the ceiling need no approval.
    let (status, job) = w
        .create_job(&bot, json!([grant("GH_TOKEN", "TOKEN", "placeholder")]))
        .await;
    assert_eq!(status, 201, "{job}");
    assert!(job["env"]["GH_TOKEN"].is_string());
    // Still nothing outside it, for an api token either.
    let api = w.mint("api", "ci", "jobs:create").await;
    let (status, body) = w
        .create_job(
            &api,
            json!([
                grant("A", "TOKEN", "placeholder"),
                grant("B", "OTHER", "placeholder")
            ]),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("grant B"));
    assert_eq!(w.job_count().await, 1);

    // A human sets it at once, and may empty it again.
    let (status, body) = w
        .set_ceiling(&w.alice, json!(["OTHER", "TOKEN", "OTHER"]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.ceiling().await, json!(["OTHER", "TOKEN"]));
    let (status, _) = w.set_ceiling(&w.alice, json!([])).await;
    assert_eq!(status, 200);
    let (status, _) = w
        .create_job(&bot, json!([grant("GH_TOKEN", "TOKEN", "placeholder")]))
        .await;
    assert_eq!(status, 403);
}

async fn an_agent_value_grant_waits_for_a_human_and_its_job_token_is_shown_once(engine: Engine) {
    let w = world(engine).await;
    let (status, _) = w.set_ceiling(&w.alice, json!(["TOKEN"])).await;
    assert_eq!(status, 200);
    let bot = w.mint("agent", "bot", "jobs:create").await;
    let bot_again = w.mint("agent", "bot", "jobs:create").await;

    let (status, held) = w
        .create_job(&bot, json!([grant("GH_TOKEN", "TOKEN", "value")]))
        .await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(held["verb"], "job.grant_values");
    assert_eq!(held["status"], "pending");
    assert_eq!(w.job_count().await, 0, "no job until a human approves");
    let id = held["approval_id"].as_str().unwrap();
    let pending = w.poll(&w.alice, id).await;
    assert_eq!(pending["params"]["grants"][0]["mode"], "value", "{pending}");
    assert!(!pending.to_string().contains("alice-value"));

    let decided = w.approve(id).await;
    assert_eq!(decided["status"], "executed", "{decided}");
    assert!(decided["result"].get("job_token").is_none(), "{decided}");
    assert_eq!(w.job_count().await, 1);

    // Another token of the same agent is not the requester.
    let other = w.poll(&bot_again, id).await;
    assert!(other["result"].get("job_token").is_none(), "{other}");
    let polled = w.poll(&bot, id).await;
    let job_token = polled["result"]["job_token"].as_str().unwrap().to_string();
    assert!(polled["result"]["job_id"].is_string());
    let again = w.poll(&bot, id).await;
    assert!(again["result"].get("job_token").is_none(), "shown once");
    assert!(!w.poll(&w.alice, id).await.to_string().contains(&job_token));

    let (status, creds) =
        w.s.json(Method::GET, "/v1/job/credentials", Some(&job_token), None)
            .await;
    assert_eq!(status, 200, "{creds}");
    assert_eq!(
        creds,
        json!([{"env_var": "GH_TOKEN", "value": "alice-value"}])
    );

    // Revoking the agent ends the job it was given.
    w.revoke_agent().await;
    assert_eq!(w.whoami(&job_token).await.0, 401);
    let (status, _) =
        w.s.json(Method::GET, "/v1/job/credentials", Some(&job_token), None)
            .await;
    assert_eq!(status, 401);
}

async fn an_api_token_an_agent_asked_for_is_revoked_with_the_agent(engine: Engine) {
    let w = world(engine).await;
    let bot = w.mint("agent", "bot", "tokens:write audit:read").await;
    let unrelated = w.mint("api", "ci", "audit:read").await;
    let (status, held) =
        w.s.json(
            Method::POST,
            "/v1/tokens",
            Some(&bot),
            Some(json!({"class": "api", "subject": "ci", "scope": "audit:read"})),
        )
        .await;
    assert_eq!(status, 202, "{held}");
    let id = held["approval_id"].as_str().unwrap();
    assert_eq!(
        w.poll(&w.alice, id).await["params"]["subject"],
        "bot/ci",
        "deciders see that the token will live under the agent"
    );
    w.approve(id).await;
    let polled = w.poll(&bot, id).await;
    let minted = polled["result"]["token"].as_str().unwrap().to_string();
    let (status, me) = w.whoami(&minted).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["cls"], "api");
    assert_eq!(me["sub"], "bot/ci");

    w.revoke_agent().await;
    assert_eq!(w.whoami(&minted).await.0, 401, "dies with its agent");
    assert_eq!(w.whoami(&bot).await.0, 401);
    assert_eq!(
        w.whoami(&unrelated).await.0,
        200,
        "a human's api token of a same-named subject is not the agent's"
    );
}

async fn an_execution_interrupted_mid_call_is_failed_by_the_sweeper_and_never_rerun(
    engine: Engine,
) {
    let w = world(engine).await;
    let bot = w.mint("agent", "bot", "secrets:write").await;
    let (status, held) =
        w.s.json(
            Method::PUT,
            "/v1/secrets/NEW",
            Some(&bot),
            Some(json!({"value": "v", "allowed_hosts": ["api.github.com"]})),
        )
        .await;
    assert_eq!(status, 202, "{held}");
    let id = held["approval_id"].as_str().unwrap();
    // Approved and claimed by an executor that then died before its
    // action committed, as a server killed mid-call leaves it. Written in
    // one statement, so no sweeper runs it in between as merely approved.
    let claim = format!(
        "UPDATE approvals SET status = 'executing', updated_at = {} WHERE id = '{id}'",
        w.s.clock.now_for_test()
    );
    match engine {
        Engine::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&w.s.database_url).await.unwrap();
            sqlx::query(&claim).execute(&pool).await.unwrap();
        }
        Engine::Postgres => {
            let pool = sqlx::PgPool::connect(&w.s.database_url).await.unwrap();
            sqlx::query(&claim).execute(&pool).await.unwrap();
        }
    }

    let sweep = || gatehouse_api::gate::sweeper::sweep(w.s.state());
    sweep().await;
    assert_eq!(w.poll(&w.alice, id).await["status"], "executing");
    w.s.clock
        .advance(gatehouse_api::gate::sweeper::INTERRUPTED_AFTER + 1);
    sweep().await;
    let failed = w.poll(&w.alice, id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"], "interrupted");
    sweep().await;
    let (_, secrets) =
        w.s.json(Method::GET, "/v1/secrets", Some(&w.alice), None)
            .await;
    assert!(!secrets.to_string().contains("NEW"), "never run: {secrets}");
}

on_both_engines!(
    an_execution_interrupted_mid_call_is_failed_by_the_sweeper_and_never_rerun,
    an_agent_grants_only_secrets_a_human_put_in_its_ceiling,
    an_agent_value_grant_waits_for_a_human_and_its_job_token_is_shown_once,
    an_api_token_an_agent_asked_for_is_revoked_with_the_agent,
);

/// Only the gate writes secrets: the store's one gate key (without which
/// no gated action, and so no secret write, runs) was taken at start by
/// the server's gate; nothing else in the process can get another.
#[tokio::test]
async fn the_running_server_gate_holds_the_stores_only_key() {
    let s = server(Engine::Sqlite).await;
    assert!(s.state().store.take_gate_key().is_none());
}
