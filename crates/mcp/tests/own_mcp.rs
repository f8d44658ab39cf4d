//! Gatehouse's own MCP server at `/mcp` (SPEC §13), with rmcp's client
//! over Streamable HTTP against the real server, on both engines: tools
//! listed per credential class and scope, gated verbs held for a human,
//! arguments checked by name, the proxy's own egress check, revocation
//! ending a session, sessions bound to their token, and tenancy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../api/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use reqwest::Method;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};

use support::{Engine, TestServer};

type Client = RunningService<RoleClient, ()>;

const OP: &str = "op@x.org";
/// A name the proxy resolves to a public address (no DNS in tests).
const STATIC_HOSTS: &str = "allowed.test=93.184.216.34,other.test=93.184.216.35";

async fn mcp_server(engine: Engine) -> TestServer {
    let _ = support::EXTRA_ROUTES.set(gatehouse_mcp::routes);
    support::server_with(engine, &[("GATEHOUSE_EGRESS_STATIC_HOSTS", STATIC_HOSTS)]).await
}

async fn connect(s: &TestServer, token: &str) -> Client {
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", s.url)).auth_header(token);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

async fn tool_names(c: &Client) -> Vec<String> {
    let mut names: Vec<String> = c
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    names
}

async fn try_call(c: &Client, name: &str, args: Value) -> Result<CallToolResult, String> {
    let params = CallToolRequestParams::new(name.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    c.call_tool(params).await.map_err(|e| e.to_string())
}

/// A tool's structured answer, and whether it is an error result.
async fn call(c: &Client, name: &str, args: Value) -> (bool, Value) {
    let r = try_call(c, name, args).await.unwrap();
    (
        r.is_error.unwrap_or(false),
        r.structured_content.unwrap_or(Value::Null),
    )
}

async fn agent(s: &TestServer, session: &str, name: &str, scope: &str) -> String {
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/agents",
            Some(session),
            Some(json!({ "name": name })),
        )
        .await;
    assert!(status == 201 || status == 409, "{body}");
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(session),
            Some(json!({"class": "agent", "subject": name, "scope": scope})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

async fn api_token(s: &TestServer, session: &str, scope: &str) -> String {
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/tokens",
            Some(session),
            Some(json!({"class": "api", "subject": "ci", "scope": scope})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// A job of agent `bot` with one placeholder grant of `GH` (bound to
/// api.github.com) and its own allow list.
async fn job_token(s: &TestServer, session: &str, allow: &[&str]) -> String {
    agent(s, session, "bot", "").await;
    let (status, body) = s.put_secret(session, "GH", "ghp_real_value").await;
    assert!(status == 201 || status == 200, "{body}");
    let (status, body) = s
        .json(
            Method::POST,
            "/v1/jobs",
            Some(session),
            Some(json!({
                "agent": "bot",
                "grants": [{"env_var": "GITHUB_TOKEN", "secret": "GH"}],
                "egress": {"allow_hosts": allow},
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["job_token"].as_str().unwrap().to_string()
}

async fn decide(s: &TestServer, session: &str, id: &str, decision: &str) -> (u16, Value) {
    s.json(
        Method::POST,
        &format!("/v1/approvals/{id}/decision"),
        Some(session),
        Some(json!({"decision": decision})),
    )
    .await
}

async fn tools_listed_follow_the_callers_class_and_scopes(engine: Engine) {
    let s = mcp_server(engine).await;
    let op = s.claim(OP).await;
    let everyone = ["egress_check", "list_grants", "revoke_self", "whoami"];

    let human = tool_names(&connect(&s, &op).await).await;
    for t in everyone.iter().chain(&[
        "approval_status",
        "secret_write",
        "secret_delete",
        "token_mint_api",
        "agent_policy_change",
        "agent_secrets_change",
        "jobs_delete_all",
    ]) {
        assert!(
            human.contains(&t.to_string()),
            "{t} missing for a human: {human:?}"
        );
    }

    let writer = agent(&s, &op, "writer", "secrets:write").await;
    let listed = tool_names(&connect(&s, &writer).await).await;
    assert!(listed.contains(&"secret_write".to_string()), "{listed:?}");
    assert!(listed.contains(&"secret_delete".to_string()), "{listed:?}");
    assert!(
        listed.contains(&"approval_status".to_string()),
        "{listed:?}"
    );
    for hidden in ["token_mint_api", "agent_policy_change", "jobs_delete_all"] {
        assert!(
            !listed.contains(&hidden.to_string()),
            "{hidden} listed for secrets:write only"
        );
    }

    let api = api_token(&s, &op, "tokens:write").await;
    let listed = tool_names(&connect(&s, &api).await).await;
    assert!(listed.contains(&"token_mint_api".to_string()), "{listed:?}");
    assert!(!listed.contains(&"secret_write".to_string()), "{listed:?}");
    // A tool that is not listed cannot be called either.
    let c = connect(&s, &api).await;
    let refused = try_call(&c, "secret_write", json!({"name": "X", "value": "v"})).await;
    assert!(refused.is_err(), "{refused:?}");

    let job = job_token(&s, &op, &[]).await;
    let listed = tool_names(&connect(&s, &job).await).await;
    assert_eq!(
        listed,
        everyone.map(String::from).to_vec(),
        "a job sees no gated verb"
    );
}

async fn a_gated_verb_from_an_agent_waits_for_a_human_then_runs_once(engine: Engine) {
    let s = mcp_server(engine).await;
    let op = s.claim(OP).await;
    let bot = agent(&s, &op, "bot", "secrets:write tokens:write").await;
    let c = connect(&s, &bot).await;

    let (err, held) = call(
        &c,
        "secret_write",
        json!({"name": "GH", "value": "agent-chosen", "allowed_hosts": ["api.github.com"]}),
    )
    .await;
    assert!(!err, "{held}");
    assert_eq!(held["status"], "pending", "{held}");
    assert_eq!(held["verb"], "secret.write");
    let id = held["approval_id"].as_str().unwrap().to_string();
    let (_, secrets) = s.json(Method::GET, "/v1/secrets", Some(&op), None).await;
    assert_eq!(secrets, json!([]), "a held write has no side effect");
    assert!(!held.to_string().contains("agent-chosen"));

    let (err, status) = call(&c, "approval_status", json!({"id": id})).await;
    assert!(!err);
    assert_eq!(status["status"], "pending");
    let (code, body) = decide(&s, &op, &id, "approve").await;
    assert_eq!(code, 200, "{body}");
    let (_, status) = call(&c, "approval_status", json!({"id": id})).await;
    assert_eq!(status["status"], "executed", "{status}");
    let (_, secrets) = s.json(Method::GET, "/v1/secrets", Some(&op), None).await;
    assert_eq!(secrets[0]["name"], "GH");
    let (code, _) = decide(&s, &op, &id, "approve").await;
    assert_eq!(code, 409, "a decided approval is not decided again");

    // An api token minted on approval is shown to the requester once.
    let (_, held) = call(
        &c,
        "token_mint_api",
        json!({"subject": "ci", "scope": "secrets:write"}),
    )
    .await;
    assert_eq!(held["status"], "pending", "{held}");
    assert_eq!(held["verb"], "token.mint_api");
    let id = held["approval_id"].as_str().unwrap().to_string();
    let (code, _) = decide(&s, &op, &id, "approve").await;
    assert_eq!(code, 200);
    let (_, first) = call(&c, "approval_status", json!({"id": id})).await;
    assert_eq!(first["status"], "executed");
    let minted = first["result"]["token"]
        .as_str()
        .expect("the token, once")
        .to_string();
    let (_, second) = call(&c, "approval_status", json!({"id": id})).await;
    assert!(
        second["result"].get("token").is_none(),
        "shown twice: {second}"
    );
    let (code, me) = s
        .json(Method::GET, "/v1/auth/whoami", Some(&minted), None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(me["cls"], "api");

    // A human session runs the verb at once: the result, no approval.
    let h = connect(&s, &op).await;
    let (err, ran) = call(&h, "secret_delete", json!({"name": "GH"})).await;
    assert!(!err, "{ran}");
    assert_eq!(ran["status"], "executed");
    assert_eq!(ran["http_status"], 204);
    let (_, secrets) = s.json(Method::GET, "/v1/secrets", Some(&op), None).await;
    assert_eq!(secrets, json!([]));
}

async fn bad_arguments_get_an_error_naming_the_field(engine: Engine) {
    let s = mcp_server(engine).await;
    let op = s.claim(OP).await;
    let c = connect(&s, &op).await;
    for (tool, args, field) in [
        ("egress_check", json!({}), "url"),
        ("egress_check", json!({"url": 5}), "url"),
        ("approval_status", json!({"id": "x", "extra": 1}), "extra"),
        ("secret_write", json!({"name": "X", "value": 5}), "value"),
        (
            "secret_write",
            json!({"name": "X", "value": "v", "inject": {"header": "A", "format": 1}}),
            "inject.format",
        ),
        (
            "agent_policy_change",
            json!({"agent": "bot"}),
            "allow_hosts",
        ),
    ] {
        let (err, body) = call(&c, tool, args.clone()).await;
        assert!(err, "{tool} {args}: {body}");
        assert_eq!(body["error"]["code"], "invalid_arguments", "{body}");
        assert_eq!(body["error"]["field"], field, "{tool} {args}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(field));
    }
    // Values the application layer refuses say so, as the JSON API does.
    let (err, body) = call(
        &c,
        "secret_write",
        json!({"name": "no/slash", "value": "v"}),
    )
    .await;
    assert!(err);
    assert_eq!(body["error"]["status"], 400, "{body}");
    let (err, body) = call(&c, "egress_check", json!({"url": "ftp://x.test/"})).await;
    assert!(!err, "{body}");
    assert_eq!(body["allowed"], false);
    assert_eq!(body["reason"], "bad_request");
    let unknown = try_call(&c, "no_such_tool", json!({})).await;
    assert!(unknown.unwrap_err().contains("no_such_tool"));
}

async fn egress_check_answers_as_the_proxy_would(engine: Engine) {
    let s = mcp_server(engine).await;
    let op = s.claim(OP).await;
    let h = connect(&s, &op).await;
    let (_, metadata) = call(
        &h,
        "egress_check",
        json!({"url": "http://[::ffff:169.254.169.254]/"}),
    )
    .await;
    assert_eq!(metadata["allowed"], false, "{metadata}");
    assert_eq!(metadata["reason"], "ssrf");
    let (_, open) = call(&h, "egress_check", json!({"url": "https://allowed.test/x"})).await;
    assert_eq!(open["allowed"], true, "{open}");
    assert_eq!(open["addresses"], json!(["93.184.216.34:443"]));

    let job = job_token(&s, &op, &["allowed.test"]).await;
    let j = connect(&s, &job).await;
    let (_, ok) = call(&j, "egress_check", json!({"url": "https://allowed.test/"})).await;
    assert_eq!(ok["allowed"], true, "{ok}");
    let (_, other) = call(&j, "egress_check", json!({"url": "https://other.test/"})).await;
    assert_eq!(other["allowed"], false, "{other}");
    assert_eq!(other["reason"], "not_allowed");
    let (_, ssrf) = call(&j, "egress_check", json!({"url": "http://0x7f.1/"})).await;
    assert_eq!(ssrf["reason"], "ssrf", "{ssrf}");

    // What the job holds: names and hosts, never the value or placeholder.
    let (_, grants) = call(&j, "list_grants", json!({})).await;
    assert_eq!(grants["grants"][0]["env_var"], "GITHUB_TOKEN", "{grants}");
    assert_eq!(grants["grants"][0]["secret"], "GH");
    assert_eq!(
        grants["grants"][0]["allowed_hosts"],
        json!(["api.github.com"])
    );
    assert!(!grants.to_string().contains("ghp_real_value"));
    let (_, me) = call(&j, "whoami", json!({})).await;
    assert_eq!(me["cls"], "job");
}

/// A raw Streamable HTTP session: initialize, then initialized.
async fn raw_session(s: &TestServer, token: &str) -> String {
    let r = s
        .client
        .post(format!("{}/mcp", s.url))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "0"}}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text().await;
    let r = raw_post(
        s,
        token,
        &id,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(r.status(), 202);
    id
}

async fn raw_post(s: &TestServer, token: &str, session: &str, body: Value) -> reqwest::Response {
    s.client
        .post(format!("{}/mcp", s.url))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn revocation_mid_session_ends_the_session(engine: Engine) {
    let s = mcp_server(engine).await;
    let op = s.claim(OP).await;
    let bot = agent(&s, &op, "bot", "").await;
    let c = connect(&s, &bot).await;
    let (_, me) = call(&c, "whoami", json!({})).await;
    assert_eq!(me["sub"], "bot");
    let session = raw_session(&s, &bot).await;
    let stream = s
        .client
        .get(format!("{}/mcp", s.url))
        .bearer_auth(&bot)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);

    let (code, _) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&op),
            Some(json!({"jti": me["jti"]})),
        )
        .await;
    assert_eq!(code, 200);
    // The next message: refused by the verifier.
    assert!(try_call(&c, "whoami", json!({})).await.is_err());
    let r = raw_post(
        &s,
        &bot,
        &session,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(r.status(), 401);
    // The open stream of the session ends.
    let mut stream = stream;
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the revoked session's stream is still open");
}

async fn a_session_is_bound_to_the_token_that_opened_it(engine: Engine) {
    let s = mcp_server(engine).await;
    let op = s.claim(OP).await;
    let first = agent(&s, &op, "bot", "").await;
    let second = agent(&s, &op, "bot", "").await;
    let session = raw_session(&s, &first).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let r = raw_post(&s, &second, &session, list.clone()).await;
    assert_eq!(
        r.status(),
        404,
        "another token of the same agent rode the session"
    );
    let r = raw_post(&s, &op, &session, list.clone()).await;
    assert_eq!(
        r.status(),
        404,
        "the owner's session rode the agent's session"
    );
    let r = raw_post(&s, &first, &session, list).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("whoami"));
}

async fn revoke_self_revokes_the_callers_own_token(engine: Engine) {
    let s = mcp_server(engine).await;
    let op = s.claim(OP).await;
    let bot = agent(&s, &op, "bot", "").await;
    let other = agent(&s, &op, "bot", "").await;
    let c = connect(&s, &bot).await;
    let (err, out) = call(&c, "revoke_self", json!({})).await;
    assert!(!err, "{out}");
    assert_eq!(out["revoked"], 1);
    let (code, _) = s
        .json(Method::GET, "/v1/auth/whoami", Some(&bot), None)
        .await;
    assert_eq!(code, 401);
    let (code, _) = s
        .json(Method::GET, "/v1/auth/whoami", Some(&other), None)
        .await;
    assert_eq!(code, 200, "only the caller's own token is revoked");
    let (_, log) = s
        .json(Method::GET, "/v1/audit?limit=1000", Some(&op), None)
        .await;
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["action"] == "token.revoke" && r["actor"] == "bot"));
}

async fn another_owners_approval_is_not_visible(engine: Engine) {
    let s = mcp_server(engine).await;
    let op = s.claim(OP).await;
    let alice = s.owner(&op, "alice@x.org").await;
    let alices_bot = agent(&s, &alice, "bot", "secrets:write").await;
    let (code, held) = s.put_secret(&alices_bot, "A", "alice-value").await;
    assert_eq!(code, 202, "{held}");
    let id = held["approval_id"].as_str().unwrap();
    let ops_bot = agent(&s, &op, "bot", "secrets:write").await;
    for token in [&ops_bot, &op] {
        let c = connect(&s, token).await;
        let (err, body) = call(&c, "approval_status", json!({"id": id})).await;
        if token == &op {
            // The operator's human session may see every owner's requests.
            assert!(!err, "{body}");
            continue;
        }
        assert!(err, "{body}");
        assert_eq!(body["error"]["status"], 404, "{body}");
        assert!(!body.to_string().contains("alice"), "{body}");
    }
    let c = connect(&s, &alices_bot).await;
    let (err, body) = call(&c, "approval_status", json!({"id": id})).await;
    assert!(!err && body["status"] == "pending", "{body}");
}

/// The route enumeration for `/mcp`: every method refuses a missing,
/// garbage or revoked token with 401, and admits every credential class.
async fn every_mcp_route_refuses_missing_and_revoked_tokens(engine: Engine) {
    let s = mcp_server(engine).await;
    let op = s.claim(OP).await;
    let revoked = agent(&s, &op, "gone", "").await;
    let (_, me) = s
        .json(Method::GET, "/v1/auth/whoami", Some(&revoked), None)
        .await;
    let (code, _) = s
        .json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&op),
            Some(json!({"jti": me["jti"]})),
        )
        .await;
    assert_eq!(code, 200);
    let job = job_token(&s, &op, &[]).await;
    let specs: Vec<_> = gatehouse_mcp::routes()
        .into_iter()
        .map(|(spec, _)| spec)
        .collect();
    // `/mcp` and the gateway's `/mcp/{name}`, three methods each.
    assert_eq!(specs.len(), 6);
    assert!(specs.iter().any(|s| s.path == "/mcp/{name}"));
    for spec in &specs {
        assert_eq!(
            spec.access,
            gatehouse_api::router::Access::Authenticated,
            "{}",
            spec.path
        );
        let rule = spec.rule.unwrap();
        assert_eq!(rule.classes, gatehouse_domain::access::ANY);
        for bad in [None, Some("garbage"), Some(revoked.as_str())] {
            let mut req = s
                .client
                .request(spec.method.clone(), format!("{}{}", s.url, spec.path))
                .header("accept", "application/json, text/event-stream");
            if let Some(t) = bad {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(
                r.status(),
                401,
                "{} {} with {bad:?}",
                spec.method,
                spec.path
            );
        }
    }
    // A job token reaches /mcp (SPEC §2).
    assert_eq!(tool_names(&connect(&s, &job).await).await.len(), 4);
}

on_both_engines!(
    tools_listed_follow_the_callers_class_and_scopes,
    a_gated_verb_from_an_agent_waits_for_a_human_then_runs_once,
    bad_arguments_get_an_error_naming_the_field,
    egress_check_answers_as_the_proxy_would,
    revocation_mid_session_ends_the_session,
    a_session_is_bound_to_the_token_that_opened_it,
    revoke_self_revokes_the_callers_own_token,
    another_owners_approval_is_not_visible,
    every_mcp_route_refuses_missing_and_revoked_tokens,
);
