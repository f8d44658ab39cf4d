//! Approval gates end to end on SQLite and PostgreSQL (SPEC §7): every
//! gated verb waits for a human whatever non-interactive credential asks,
//! decisions are for humans only, and an approved request runs once with
//! the parameters it was requested with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};

use gatehouse_domain::approvals::Verb;
use gatehouse_domain::Email;
use reqwest::Method;
use serde_json::{json, Value};
use support::{server_with_file, Engine, TestServer};

const OP: &str = "op@example.com";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

const ALL_SCOPES: &str =
    "secrets:write tokens:write jobs:create jobs:read hooks:write audit:read approval:bypass";

struct World {
    s: TestServer,
    /// Operator session.
    op: String,
    /// Alice's session (an owner).
    alice: String,
}

async fn world(engine: Engine, extra: &[(&str, &str)]) -> World {
    world_with_file(engine, extra, None).await
}

/// An upstream of the operator's, for `upstream.revoke` (never called:
/// a held request makes no upstream call).
const OPERATOR_UPSTREAM: &str = "[[upstream]]\nname = \"dbx\"\nowner = \"op@example.com\"\n\
    driver = \"databricks\"\nbase_url = \"http://127.0.0.1:9/\"\n";

async fn world_with_file(engine: Engine, extra: &[(&str, &str)], file: Option<&str>) -> World {
    let s = server_with_file(engine, extra, file).await;
    let op = s.claim(OP).await;
    let alice = s.owner(&op, ALICE).await;
    World { s, op, alice }
}

async fn agent(s: &TestServer, session: &str, name: &str) {
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(session),
            Some(json!({ "name": name })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// A token minted directly by a human session.
async fn mint(s: &TestServer, session: &str, class: &str, subject: &str, scope: &str) -> String {
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(session),
            Some(json!({ "class": class, "subject": subject, "scope": scope })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// A job of `agent` granted `secrets` (as placeholders); (id, token).
async fn job(s: &TestServer, session: &str, agent: &str, secrets: &[&str]) -> (String, String) {
    let grants: Vec<Value> = secrets
        .iter()
        .enumerate()
        .map(|(i, name)| json!({ "env_var": format!("S{i}"), "secret": name, "mode": "placeholder" }))
        .collect();
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/jobs",
            Some(session),
            Some(json!({ "agent": agent, "grants": grants })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["job_id"].as_str().unwrap().to_string(),
        body["job_token"].as_str().unwrap().to_string(),
    )
}

/// 200 while `token` works, 401 once it is revoked.
async fn whoami_status(s: &TestServer, token: &str) -> u16 {
    s.json(Method::GET, "/v1/auth/whoami", Some(token), None)
        .await
        .0
}

async fn approval(s: &TestServer, token: &str, id: &str) -> Value {
    let (status, body) = s
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

async fn decide(s: &TestServer, token: &str, id: &str, decision: &str) -> (u16, Value) {
    s.json(
        Method::POST,
        &format!("/v1/approvals/{id}/decision"),
        Some(token),
        Some(json!({ "decision": decision, "reason": "looked at it" })),
    )
    .await
}

async fn secret_value(s: &TestServer, owner: &str, name: &str) -> Option<String> {
    let owner = Email::parse(owner).unwrap();
    gatehouse_api::routes::secrets::open_for(s.state(), &owner, name)
        .await
        .map(|v| v.expose_str().unwrap().to_string())
}

async fn audit_actions(s: &TestServer, op: &str) -> Vec<Value> {
    let (status, body) = s
        .json(
            Method::GET,
            "/v1/audit?since_seq=0&limit=1000",
            Some(op),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

fn count_action(records: &[Value], action: &str) -> usize {
    records.iter().filter(|r| r["action"] == action).count()
}

/// The request that exercises each gated verb, as the operator's own
/// credentials would send it. No wildcard arm: a new verb must say how it
/// is reached, or that it has no route yet.
fn request_for(verb: Verb) -> Option<(Method, &'static str, Option<Value>)> {
    match verb {
        Verb::SecretWrite => Some((
            Method::PUT,
            "/v1/secrets/NEW_SECRET",
            Some(json!({ "value": "s3cr3t-value", "allowed_hosts": ["api.github.com"] })),
        )),
        Verb::SecretDelete => Some((Method::DELETE, "/v1/secrets/EXISTING", None)),
        Verb::TokenMintApi => Some((
            Method::POST,
            "/v1/tokens",
            Some(json!({ "class": "api", "subject": "ci", "scope": "audit:read" })),
        )),
        Verb::JobDeleteAll => Some((Method::DELETE, "/v1/jobs", None)),
        Verb::OwnerDeprovision => Some((Method::DELETE, "/v1/owners/alice@example.com", None)),
        Verb::PolicyChange => Some((
            Method::PUT,
            "/v1/agents/bot/egress",
            Some(json!({ "allow_hosts": ["api.github.com"] })),
        )),
        Verb::UpstreamRevoke => Some((Method::DELETE, "/v1/upstreams/dbx/credential", None)),
        // Within the agent's ceiling (set by the test), by value.
        Verb::JobGrantValues => Some((
            Method::POST,
            "/v1/jobs",
            Some(json!({ "agent": "bot", "grants": [
                { "env_var": "EXISTING_VALUE", "secret": "EXISTING", "mode": "value" }
            ] })),
        )),
        // Not gated by default.
        Verb::JobDelete => None,
        // Held by the MCP gateway, not an HTTP route (crates/mcp/tests).
        Verb::McpTool => None,
    }
}

/// What must not change while a request waits.
async fn snapshot(s: &TestServer, op: &str) -> Value {
    let secrets = s.json(Method::GET, "/v1/secrets", Some(op), None).await.1;
    let tokens = s.json(Method::GET, "/v1/tokens", Some(op), None).await.1;
    let jobs = s.json(Method::GET, "/v1/jobs", Some(op), None).await.1;
    let alice_exists = s
        .state()
        .store
        .owner(&Email::parse(ALICE).unwrap())
        .await
        .unwrap()
        .is_some();
    let tokens: Vec<Value> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!([t["jti"], t["revoked"]]))
        .collect();
    let jobs: Vec<Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| json!([j["job_id"], j["deleted_at"]]))
        .collect();
    let agents = s.json(Method::GET, "/v1/agents", Some(op), None).await.1;
    json!({ "secrets": secrets, "tokens": tokens, "jobs": jobs, "agents": agents, "alice": alice_exists })
}

async fn every_gated_verb_is_held_for_every_non_interactive_class(engine: Engine) {
    let w = world_with_file(engine, &[], Some(OPERATOR_UPSTREAM)).await;
    let s = &w.s;
    agent(s, &w.op, "bot").await;
    assert_eq!(s.put_secret(&w.op, "EXISTING", "old-value").await.0, 201);
    let (status, body) = s
        .json(
            Method::PUT,
            "/v1/agents/bot/secrets",
            Some(&w.op),
            Some(json!({ "secrets": ["EXISTING"] })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_job_id, job_token) = job(s, &w.op, "bot", &[]).await;
    let api = mint(s, &w.op, "api", "automation", ALL_SCOPES).await;
    let agent_token = mint(
        s,
        &w.op,
        "agent",
        "bot",
        "secrets:write tokens:write jobs:create jobs:read audit:read",
    )
    .await;

    let registry = gatehouse_domain::approvals::GateRegistry::default();
    let mut checked = 0;
    for verb in registry.gated_verbs() {
        let Some((method, path, body)) = request_for(verb) else {
            // Reached through the MCP gateway, whose tests hold it for
            // agent and api credentials (crates/mcp/tests/gateway.rs).
            assert_eq!(
                verb,
                Verb::McpTool,
                "{verb} is gated but no test reaches it"
            );
            continue;
        };
        for (class, token) in [("api", &api), ("agent", &agent_token), ("job", &job_token)] {
            let before = snapshot(s, &w.op).await;
            let response = s
                .call(method.clone(), path, Some(token), body.clone())
                .await;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string());
            let reply: Value = response.json().await.unwrap();
            // Job tokens carry only credentials:read and reach only their
            // own routes (SPEC §2): refused before the gate, with no effect.
            if class == "job" {
                assert_eq!(status, 403, "{verb} by {class}: {reply}");
                let code = reply["error"]["code"].as_str().unwrap();
                assert!(
                    code == "insufficient_scope" || code == "credential_class_not_admitted",
                    "{verb}: {reply}"
                );
            } else {
                assert_eq!(status, 202, "{verb} by {class}: {reply}");
                assert_eq!(reply["status"], "pending");
                assert_eq!(reply["verb"], verb.as_str());
                assert!(reply["expires_at"].is_string());
                let id = reply["approval_id"].as_str().unwrap();
                assert_eq!(
                    location.as_deref(),
                    Some(format!("/v1/approvals/{id}").as_str())
                );
                let stored = approval(s, token, id).await;
                assert_eq!(stored["status"], "pending", "{stored}");
                assert_eq!(stored["requester"]["cls"], class);
                checked += 1;
            }
            assert_eq!(
                snapshot(s, &w.op).await,
                before,
                "{verb} by {class} changed the store"
            );
        }
    }
    assert_eq!(checked, 8 * 2);
    let pending = s
        .json(
            Method::GET,
            "/v1/approvals?status=pending",
            Some(&w.op),
            None,
        )
        .await
        .1;
    assert_eq!(pending.as_array().unwrap().len(), checked);
    assert_eq!(
        secret_value(s, OP, "EXISTING").await.as_deref(),
        Some("old-value")
    );
    assert_eq!(secret_value(s, OP, "NEW_SECRET").await, None);
}

/// An agent of alice asks to write a secret; returns (agent token, id).
async fn pending_secret_write(w: &World, name: &str, value: &str) -> (String, String) {
    let s = &w.s;
    agent(s, &w.alice, "bot").await;
    let bot = mint(s, &w.alice, "agent", "bot", "secrets:write").await;
    let (status, body) = s
        .json(
            Method::PUT,
            &format!("/v1/secrets/{name}"),
            Some(&bot),
            Some(json!({ "value": value, "allowed_hosts": ["api.github.com"] })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    (bot, body["approval_id"].as_str().unwrap().to_string())
}

async fn an_approved_write_runs_once_with_the_requested_value(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    let (bot, id) = pending_secret_write(&w, "DEPLOY_KEY", "v4lue-from-agent").await;
    let shown = approval(s, &w.alice, &id).await;
    assert_eq!(shown["params"]["name"], "DEPLOY_KEY");
    assert_eq!(shown["params"]["value"]["length"], 16);
    assert_eq!(
        shown["params"]["value"]["fingerprint"]
            .as_str()
            .unwrap()
            .len(),
        16
    );
    assert_eq!(shown["params_digest"].as_str().unwrap().len(), 64);
    assert!(!shown.to_string().contains("v4lue-from-agent"));

    let (status, decided) = decide(s, &w.alice, &id, "approve").await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "executed", "{decided}");
    assert_eq!(decided["decisions"][0]["by"], ALICE);
    assert_eq!(
        secret_value(s, ALICE, "DEPLOY_KEY").await.as_deref(),
        Some("v4lue-from-agent")
    );
    let polled = approval(s, &bot, &id).await;
    assert_eq!(polled["status"], "executed");
    assert_eq!(polled["result"]["name"], "DEPLOY_KEY");

    let (status, body) = decide(s, &w.alice, &id, "approve").await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = decide(s, &w.op, &id, "deny").await;
    assert_eq!(status, 409);
    let audit = audit_actions(s, &w.op).await;
    assert_eq!(count_action(&audit, "secret.write"), 1);
    assert_eq!(count_action(&audit, "approval.request"), 1);
    assert_eq!(count_action(&audit, "approval.decide"), 1);
    assert_eq!(count_action(&audit, "approval.execute"), 1);
    assert!(!serde_json::to_string(&audit)
        .unwrap()
        .contains("v4lue-from-agent"));
}

async fn a_denied_request_changes_nothing(engine: Engine) {
    let w = world(engine, &[]).await;
    let (bot, id) = pending_secret_write(&w, "DEPLOY_KEY", "never-written").await;
    let (status, body) = decide(&w.s, &w.op, &id, "deny").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "denied");
    assert_eq!(secret_value(&w.s, ALICE, "DEPLOY_KEY").await, None);
    assert_eq!(approval(&w.s, &bot, &id).await["status"], "denied");
}

async fn only_humans_of_the_owner_or_the_operator_decide(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    let bob = s.owner(&w.op, BOB).await;
    let (bot, id) = pending_secret_write(&w, "DEPLOY_KEY", "value-1").await;
    let alice_api = mint(
        s,
        &w.alice,
        "api",
        "ops",
        "secrets:write tokens:write audit:read",
    )
    .await;
    let op_api = mint(s, &w.op, "api", "ops", ALL_SCOPES).await;
    let (_, job_token) = job(s, &w.alice, "bot", &[]).await;
    for token in [&bot, &alice_api, &op_api, &job_token] {
        let (status, body) = decide(s, token, &id, "approve").await;
        assert_eq!(status, 403, "{body}");
    }
    // Another owner's human does not even learn that it exists.
    assert_eq!(decide(s, &bob, &id, "approve").await.0, 404);
    assert_eq!(
        s.json(
            Method::GET,
            &format!("/v1/approvals/{id}"),
            Some(&bob),
            None
        )
        .await
        .0,
        404
    );
    let bobs_list = s
        .json(Method::GET, "/v1/approvals", Some(&bob), None)
        .await
        .1;
    assert_eq!(bobs_list, json!([]));
    // The operator may decide on anyone's.
    let (status, body) = decide(s, &w.op, &id, "approve").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "executed");
}

async fn malformed_and_unknown_decisions_are_refused_clearly(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    let (_, id) = pending_secret_write(&w, "DEPLOY_KEY", "value-1").await;
    let path = format!("/v1/approvals/{id}/decision");
    for body in [
        json!({ "decision": "maybe" }),
        json!({ "decision": 1 }),
        json!({ "verdict": "approve" }),
        json!({ "decision": "approve", "extra": true }),
        json!({ "decision": "approve", "reason": "a\u{7}b" }),
    ] {
        let (status, reply) = s
            .json(Method::POST, &path, Some(&w.alice), Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body} → {reply}");
        assert!(reply["error"]["message"].is_string());
    }
    let (status, _) = decide(s, &w.alice, "no-such-approval", "approve").await;
    assert_eq!(status, 404);
    assert_eq!(
        s.json(
            Method::GET,
            "/v1/approvals/no-such-approval",
            Some(&w.alice),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        s.json(
            Method::GET,
            "/v1/approvals?status=bogus",
            Some(&w.alice),
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(approval(s, &w.alice, &id).await["status"], "pending");
}

async fn n_of_m_needs_distinct_humans(engine: Engine) {
    let w = world(
        engine,
        &[("GATEHOUSE_APPROVALS_REQUIRED", "secret.write=2")],
    )
    .await;
    let s = &w.s;
    let (_, id) = pending_secret_write(&w, "DEPLOY_KEY", "value-2").await;
    let (status, body) = decide(s, &w.alice, &id, "approve").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "pending");
    assert_eq!(body["approvals"], 1);
    assert_eq!(body["required"], 2);
    assert_eq!(decide(s, &w.alice, &id, "approve").await.0, 409);
    assert_eq!(secret_value(s, ALICE, "DEPLOY_KEY").await, None);
    let (status, body) = decide(s, &w.op, &id, "approve").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "executed");
    assert_eq!(
        secret_value(s, ALICE, "DEPLOY_KEY").await.as_deref(),
        Some("value-2")
    );
}

async fn pending_requests_expire_after_their_ttl(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    let (_bot, id) = pending_secret_write(&w, "DEPLOY_KEY", "value-3").await;
    s.clock.advance(3599);
    assert_eq!(approval(s, &w.alice, &id).await["status"], "pending");
    s.clock.advance(1);
    let (status, body) = decide(s, &w.alice, &id, "approve").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(approval(s, &w.alice, &id).await["status"], "expired");
    assert_eq!(secret_value(s, ALICE, "DEPLOY_KEY").await, None);
    let audit = audit_actions(s, &w.op).await;
    assert_eq!(count_action(&audit, "approval.expire"), 1);
}

async fn deleting_or_revoking_the_requester_expires_its_requests(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    agent(s, &w.op, "bot").await;
    // A job's request dies with the job. Job tokens reach no gated route
    // over HTTP (SPEC §2), so the job's request is handed to the gate
    // directly, as a route admitting jobs would.
    let (job_id, job_token) = job(s, &w.op, "bot", &[]).await;
    let (status, route) = s
        .json(
            Method::DELETE,
            "/v1/owners/alice@example.com",
            Some(&job_token),
            None,
        )
        .await;
    assert_eq!(status, 403, "{route}");
    let me = s
        .json(Method::GET, "/v1/auth/whoami", Some(&job_token), None)
        .await
        .1;
    let principal = gatehouse_domain::Principal {
        subject: me["sub"].as_str().unwrap().into(),
        owner: Email::parse(OP).unwrap(),
        class: gatehouse_domain::CredentialClass::Job,
        scopes: gatehouse_domain::ScopeSet::parse(me["scope"].as_str().unwrap()).unwrap(),
        role: gatehouse_domain::Role::Operator,
        jti: me["jti"].as_str().map(str::to_string),
        expires_at: me["exp"].as_i64(),
    };
    let held = gatehouse_api::gate::gate(
        s.state(),
        &principal,
        &axum::http::HeaderMap::new(),
        &gatehouse_api::request_id::RequestId("test".into()),
        gatehouse_api::gate::GatedCall::OwnerDeprovision {
            email: Email::parse(ALICE).unwrap(),
        },
    )
    .await
    .unwrap();
    assert!(
        matches!(&held, gatehouse_api::gate::GateOutcome::Held(h) if h.verb.as_str() == "owner.deprovision"),
        "{held:?}"
    );
    let pending = s
        .json(
            Method::GET,
            "/v1/approvals?status=pending",
            Some(&w.op),
            None,
        )
        .await
        .1;
    let by_job = pending[0]["approval_id"].as_str().unwrap().to_string();
    // An agent's request dies when the agent's tokens are revoked.
    let bot = mint(s, &w.op, "agent", "bot", "secrets:write").await;
    let (status, held) = s.put_secret(&bot, "X", "value").await;
    assert_eq!(status, 202, "{held}");
    let by_agent = held["approval_id"].as_str().unwrap().to_string();

    let (status, _) = s
        .json(
            Method::DELETE,
            &format!("/v1/jobs/{job_id}"),
            Some(&w.op),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(approval(s, &w.op, &by_job).await["status"], "expired");
    assert_eq!(approval(s, &w.op, &by_agent).await["status"], "pending");
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&w.op),
            Some(json!({ "subject": "bot" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(approval(s, &w.op, &by_agent).await["status"], "expired");
    assert_eq!(decide(s, &w.op, &by_agent, "approve").await.0, 409);
}

async fn a_request_whose_target_vanished_fails_with_the_reason(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    agent(s, &w.alice, "bot").await;
    assert_eq!(s.put_secret(&w.alice, "OLD", "old-value").await.0, 201);
    let bot = mint(s, &w.alice, "agent", "bot", "secrets:write").await;
    let (status, held) = s
        .json(Method::DELETE, "/v1/secrets/OLD", Some(&bot), None)
        .await;
    assert_eq!(status, 202, "{held}");
    let id = held["approval_id"].as_str().unwrap();
    assert_eq!(
        s.json(Method::DELETE, "/v1/secrets/OLD", Some(&w.alice), None)
            .await
            .0,
        204
    );
    let (status, body) = decide(s, &w.alice, id, "approve").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "failed");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("no secret named OLD"),
        "{body}"
    );
    let audit = audit_actions(s, &w.op).await;
    assert_eq!(count_action(&audit, "approval.fail"), 1);
    assert_eq!(count_action(&audit, "approval.execute"), 0);
}

async fn an_approved_api_token_is_shown_only_to_its_requester(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    let automation = mint(s, &w.alice, "api", "automation", "tokens:write audit:read").await;
    let (status, held) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(&automation),
            Some(json!({ "class": "api", "subject": "ci", "scope": "audit:read", "ttl_seconds": 600 })),
        )
        .await;
    assert_eq!(status, 202, "{held}");
    let id = held["approval_id"].as_str().unwrap();
    assert_eq!(
        approval(s, &w.alice, id).await["params"]["scope"],
        "audit:read"
    );
    let (status, decided) = decide(s, &w.alice, id, "approve").await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "executed");
    assert!(decided["result"].get("token").is_none(), "{decided}");
    assert!(approval(s, &w.alice, id).await["result"]
        .get("token")
        .is_none());
    // Another token of the same subject is not the requesting credential:
    // it never sees the token (and does not use up its one showing).
    let same_subject = mint(s, &w.alice, "api", "automation", "tokens:write").await;
    let other = approval(s, &same_subject, id).await;
    assert_eq!(other["status"], "executed", "{other}");
    assert!(other["result"].get("token").is_none(), "{other}");
    let polled = approval(s, &automation, id).await;
    let token = polled["result"]["token"].as_str().unwrap();
    // Shown once: the next poll of the requester has it no more.
    let again = approval(s, &automation, id).await;
    assert_eq!(again["status"], "executed");
    assert!(again["result"].get("token").is_none(), "{again}");
    assert_eq!(again["result"]["jti"], polled["result"]["jti"]);
    let (status, me) = s
        .json(Method::GET, "/v1/auth/whoami", Some(token), None)
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], "ci");
    assert_eq!(me["cls"], "api");
    assert_eq!(me["scope"], "audit:read");
    // A request for scopes the requester lacks never gets as far as a human.
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(&automation),
            Some(json!({ "class": "api", "subject": "ci", "scope": "secrets:write" })),
        )
        .await;
    assert_eq!(status, 403);
}

async fn bypass_needs_the_scope_and_a_reason_and_is_audited(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    let with_scope = mint(
        s,
        &w.op,
        "api",
        "breakglass",
        "secrets:write approval:bypass",
    )
    .await;
    let without = mint(s, &w.op, "api", "ci", "secrets:write").await;
    agent(s, &w.op, "bot").await;
    let bot = mint(s, &w.op, "agent", "bot", "secrets:write").await;
    let put = |token: &str, header: Option<&str>, name: &str| {
        let mut req = s
            .client
            .put(format!("{}/v1/secrets/{name}", s.url))
            .bearer_auth(token)
            .json(&json!({ "value": "bypassed-value" }));
        if let Some(h) = header {
            req = req.header("Gatehouse-Approval-Bypass", h);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(put(&with_scope, Some("incident 4711"), "A").await, 201);
    assert_eq!(
        secret_value(s, OP, "A").await.as_deref(),
        Some("bypassed-value")
    );
    assert_eq!(put(&with_scope, None, "B").await, 202);
    assert_eq!(put(&without, Some("incident"), "C").await, 202);
    assert_eq!(put(&bot, Some("incident"), "D").await, 202);
    assert_eq!(put(&with_scope, Some("   "), "E").await, 400);
    for name in ["B", "C", "D", "E"] {
        assert_eq!(secret_value(s, OP, name).await, None);
    }
    let audit = audit_actions(s, &w.op).await;
    let bypasses: Vec<&Value> = audit
        .iter()
        .filter(|r| r["action"] == "approval.bypass")
        .collect();
    assert_eq!(bypasses.len(), 1);
    assert_eq!(bypasses[0]["actor"], "breakglass");
    assert!(bypasses[0]["outcome"]
        .as_str()
        .unwrap()
        .contains("incident 4711"));
}

async fn an_agent_cannot_rewrite_a_secret_granted_to_itself(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    agent(s, &w.alice, "bot").await;
    assert_eq!(s.put_secret(&w.alice, "GRANTED", "original").await.0, 201);
    let (_, _job_token) = job(s, &w.alice, "bot", &["GRANTED"]).await;
    let bot = mint(s, &w.alice, "agent", "bot", "secrets:write").await;
    let (status, body) = s.put_secret(&bot, "GRANTED", "chosen-by-agent").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "self_targeted_secret_write");
    let (status, body) = s
        .json(Method::DELETE, "/v1/secrets/GRANTED", Some(&bot), None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "self_targeted_secret_write");
    let all = s
        .json(Method::GET, "/v1/approvals", Some(&w.alice), None)
        .await
        .1;
    assert_eq!(all, json!([]));
    assert_eq!(
        secret_value(s, ALICE, "GRANTED").await.as_deref(),
        Some("original")
    );
    // Another secret of the same owner goes to a human as usual.
    assert_eq!(s.put_secret(&bot, "OTHER", "value").await.0, 202);
}

async fn two_humans_approving_at_once_run_it_once(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    let (_, id) = pending_secret_write(&w, "DEPLOY_KEY", "raced-value").await;
    let (a, b) = tokio::join!(
        decide(s, &w.alice, &id, "approve"),
        decide(s, &w.op, &id, "approve")
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let audit = audit_actions(s, &w.op).await;
    assert_eq!(count_action(&audit, "secret.write"), 1);
    assert_eq!(count_action(&audit, "approval.execute"), 1);
    assert_eq!(approval(s, &w.alice, &id).await["status"], "executed");
}

async fn an_approved_request_survives_a_restart(engine: Engine) {
    let w = world(engine, &[]).await;
    let (_, id) = pending_secret_write(&w, "DEPLOY_KEY", "after-restart").await;
    // Recorded as approved, as if the server died before running it.
    let decision = gatehouse_store::ApprovalDecision {
        decider: ALICE.into(),
        decision: gatehouse_domain::approvals::Decision::Approve,
        reason: String::new(),
        decided_at: w.s.clock.now_for_test(),
    };
    let event = gatehouse_domain::audit::AuditEvent {
        actor: ALICE.into(),
        cls: "session".into(),
        owner: ALICE.into(),
        action: "approval.decide".into(),
        target: id.clone(),
        outcome: "approve".into(),
        request_id: String::new(),
    };
    let recorded =
        w.s.state()
            .store
            .decide_approval(&id, &decision, event, w.s.clock.now_for_test())
            .await
            .unwrap();
    assert_eq!(
        recorded,
        gatehouse_store::DecideResult::Recorded(
            gatehouse_domain::approvals::ApprovalStatus::Approved
        )
    );
    let alice = w.alice.clone();
    let s = w.s.restart().await;
    let shown = approval(&s, &alice, &id).await;
    assert_eq!(shown["status"], "executed", "{shown}");
    assert_eq!(
        secret_value(&s, ALICE, "DEPLOY_KEY").await.as_deref(),
        Some("after-restart")
    );
}

async fn replicas_both_seeing_an_approval_run_it_once(engine: Engine) {
    let w = world(engine, &[]).await;
    let replica = w.s.replica().await;
    let (_, id) = pending_secret_write(&w, "DEPLOY_KEY", "replicated").await;
    // One human on each replica at the same moment; both replicas' sweepers
    // also see the approved request.
    let (a, b) = tokio::join!(
        decide(&w.s, &w.alice, &id, "approve"),
        decide(&replica, &w.op, &id, "approve")
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    // Both replicas' sweepers see the approved request too: run one sweep
    // on each, at the same moment, and count only after both have ended.
    tokio::join!(
        gatehouse_api::gate::sweeper::sweep(w.s.state()),
        gatehouse_api::gate::sweeper::sweep(replica.state())
    );
    let audit = audit_actions(&replica, &w.op).await;
    assert_eq!(count_action(&audit, "secret.write"), 1);
    assert_eq!(count_action(&audit, "approval.execute"), 1);
    assert_eq!(
        approval(&replica, &w.alice, &id).await["status"],
        "executed"
    );
}

async fn deprovisioning_an_owner_removes_everything_but_the_audit(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    agent(s, &w.alice, "bot").await;
    assert_eq!(s.put_secret(&w.alice, "TOKEN", "alice-value").await.0, 201);
    let (_, alice_job) = job(s, &w.alice, "bot", &["TOKEN"]).await;
    let alice_api = mint(s, &w.alice, "api", "ci", "audit:read").await;
    let op_api = mint(s, &w.op, "api", "automation", "audit:read").await;
    let (status, held) = s
        .json(
            Method::DELETE,
            "/v1/owners/alice@example.com",
            Some(&op_api),
            None,
        )
        .await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(
        secret_value(s, ALICE, "TOKEN").await.as_deref(),
        Some("alice-value")
    );
    let id = held["approval_id"].as_str().unwrap();
    let (status, body) = decide(s, &w.op, id, "approve").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "executed", "{body}");
    for token in [&w.alice, &alice_job, &alice_api] {
        assert_eq!(whoami_status(s, token).await, 401);
    }
    assert_eq!(secret_value(s, ALICE, "TOKEN").await, None);
    assert!(s
        .state()
        .store
        .owner_data_key(&Email::parse(ALICE).unwrap())
        .await
        .unwrap()
        .is_none());
    let audit = audit_actions(s, &w.op).await;
    assert!(audit
        .iter()
        .any(|r| r["owner"] == ALICE && r["action"] == "secret.write"));
    assert_eq!(count_action(&audit, "owner.deprovision"), 1);
    // The operator cannot remove themself; unknown owners are 404.
    assert_eq!(
        s.json(
            Method::DELETE,
            "/v1/owners/op@example.com",
            Some(&w.op),
            None
        )
        .await
        .0,
        409
    );
    assert_eq!(
        s.json(
            Method::DELETE,
            "/v1/owners/nobody@example.com",
            Some(&w.op),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        s.json(
            Method::DELETE,
            "/v1/owners/op@example.com",
            Some(&alice_api),
            None
        )
        .await
        .0,
        401
    );
}

async fn deleting_all_jobs_waits_for_a_human_and_then_revokes_them(engine: Engine) {
    let w = world(engine, &[]).await;
    let s = &w.s;
    agent(s, &w.alice, "bot").await;
    let (_, first) = job(s, &w.alice, "bot", &[]).await;
    let (_, second) = job(s, &w.alice, "bot", &[]).await;
    let bot = mint(s, &w.alice, "agent", "bot", "jobs:create").await;
    let (status, held) = s.json(Method::DELETE, "/v1/jobs", Some(&bot), None).await;
    assert_eq!(status, 202, "{held}");
    for t in [&first, &second] {
        assert_eq!(whoami_status(s, t).await, 200);
    }
    let (status, body) = decide(
        s,
        &w.alice,
        held["approval_id"].as_str().unwrap(),
        "approve",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "executed");
    for t in [&first, &second] {
        assert_eq!(whoami_status(s, t).await, 401);
    }
    let (status, body) = s
        .json(Method::DELETE, "/v1/jobs", Some(&w.alice), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["deleted"], 0);
}

async fn configured_verbs_are_gated_too(engine: Engine) {
    let w = world(engine, &[("GATEHOUSE_APPROVALS_GATED_VERBS", "job.delete")]).await;
    let s = &w.s;
    agent(s, &w.alice, "bot").await;
    let (job_id, job_token) = job(s, &w.alice, "bot", &[]).await;
    let bot = mint(s, &w.alice, "agent", "bot", "jobs:create").await;
    let (status, held) = s
        .json(
            Method::DELETE,
            &format!("/v1/jobs/{job_id}"),
            Some(&bot),
            None,
        )
        .await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(whoami_status(s, &job_token).await, 200);
    let (status, body) = decide(
        s,
        &w.alice,
        held["approval_id"].as_str().unwrap(),
        "approve",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "executed");
    assert_eq!(whoami_status(s, &job_token).await, 401);
}

async fn new_pending_approvals_are_announced_without_secret_values(engine: Engine) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let w = world(
        engine,
        &[
            ("GATEHOUSE_APPROVALS_NOTIFY_URL", &url),
            ("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8"),
        ],
    )
    .await;
    let (_, id) = pending_secret_write(&w, "DEPLOY_KEY", "n0t-for-the-pager").await;
    for _ in 0..100 {
        if !received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["approval_id"], id.as_str());
    assert_eq!(got[0]["verb"], "secret.write");
    assert_eq!(got[0]["params"]["name"], "DEPLOY_KEY");
    assert!(!got[0].to_string().contains("n0t-for-the-pager"));
}

use support::NowForTest;

on_both_engines!(
    every_gated_verb_is_held_for_every_non_interactive_class,
    an_approved_write_runs_once_with_the_requested_value,
    a_denied_request_changes_nothing,
    only_humans_of_the_owner_or_the_operator_decide,
    malformed_and_unknown_decisions_are_refused_clearly,
    n_of_m_needs_distinct_humans,
    pending_requests_expire_after_their_ttl,
    deleting_or_revoking_the_requester_expires_its_requests,
    a_request_whose_target_vanished_fails_with_the_reason,
    an_approved_api_token_is_shown_only_to_its_requester,
    bypass_needs_the_scope_and_a_reason_and_is_audited,
    an_agent_cannot_rewrite_a_secret_granted_to_itself,
    two_humans_approving_at_once_run_it_once,
    an_approved_request_survives_a_restart,
    replicas_both_seeing_an_approval_run_it_once,
    deprovisioning_an_owner_removes_everything_but_the_audit,
    deleting_all_jobs_waits_for_a_human_and_then_revokes_them,
    configured_verbs_are_gated_too,
    new_pending_approvals_are_announced_without_secret_values,
);
