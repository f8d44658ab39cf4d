#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The MCP gateway against a real server and a real upstream MCP server
//! (over TLS, recording what it receives), with rmcp's client as the
//! agent: filtered listing, the owner's secret injected upstream and
//! never shown to the agent, gated calls held (nothing upstream), run
//! once when approved (with the stored arguments), denied, expired, a
//! second decision refused, revocation mid-session, tenancy, and the
//! URL checked when saved and again at use.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use rmcp::model::{CallToolRequestParams, NumberOrString, ProgressToken, RequestMetaObject};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::{json, Value};

use support::*;

const HELD: &[(&str, &str)] = &[("GATEHOUSE_MCP_HOLD_SECONDS", "0")];
const WAITS: &[(&str, &str)] = &[("GATEHOUSE_MCP_HOLD_SECONDS", "30")];

struct World {
    s: TestServer,
    op: String,
    alice: String,
    agent: String,
}

/// Alice owns secret GH and server `gh` (everything allowed but
/// `admin_*`; `delete_*` gated); her agent `bot` has a token.
async fn world(engine: Engine, extra: &[(&str, &str)]) -> World {
    let s = server(engine, extra).await;
    let op = s.claim(OP).await;
    let alice = s.owner(&op, ALICE).await;
    s.secret(&alice, "GH", SECRET_VALUE).await;
    let (status, body) = s
        .save_server(
            &alice,
            s.server_body("gh", &["search", "read_*", "delete_*"], &["delete_*"]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let agent = s.agent_token(&alice, "bot").await;
    World {
        s,
        op,
        alice,
        agent,
    }
}

fn call(tool: &str, arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_string()).with_arguments(args(arguments))
}

async fn pending_approvals(w: &World) -> Vec<Value> {
    let (status, body) =
        w.s.json(
            Method::GET,
            "/v1/approvals?status=pending",
            Some(&w.alice),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

async fn decide(w: &World, id: &str, decision: &str) -> (u16, Value) {
    w.s.json(
        Method::POST,
        &format!("/v1/approvals/{id}/decision"),
        Some(&w.alice),
        Some(json!({"decision": decision, "reason": "checked by alice"})),
    )
    .await
}

/// Waits (real time) until a pending approval shows up; its id.
async fn first_pending(w: &World) -> String {
    for _ in 0..200 {
        if let Some(a) = pending_approvals(w).await.first() {
            return a["approval_id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no approval was held");
}

async fn tools_list_shows_only_allowed_tools_and_the_owners_secret_goes_upstream_only(
    engine: Engine,
) {
    let w = world(engine, HELD).await;
    let agent = w.s.connect("gh", &w.agent).await;
    let mut names: Vec<String> = agent
        .peer()
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["delete_repo", "read_file", "search"]);

    let result = agent
        .peer()
        .call_tool(call("search", json!({"repo": "gatehouse"})))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert!(text_of(&result).contains("search ran with"), "{result:?}");
    assert!(!text_of(&result).contains(SECRET_VALUE));
    assert_eq!(
        w.s.upstream.seen.calls(),
        [("search".to_string(), json!({"repo": "gatehouse"}))]
    );
    let auth = w.s.upstream.seen.auth();
    assert!(!auth.is_empty());
    assert!(
        auth.iter().all(|a| a == &format!("Bearer {SECRET_VALUE}")),
        "the upstream saw the owner's secret, not the agent's token: {auth:?}"
    );
    let headers = w.s.upstream.seen.headers.lock().unwrap().join("\n");
    assert!(
        !headers.contains(&w.agent),
        "the agent's token went upstream"
    );

    // A tool the allow list does not name: refused by name, never sent.
    let refused = agent
        .peer()
        .call_tool(call("admin_reset", json!({})))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("admin_reset"), "{refused}");
    assert_eq!(w.s.upstream.seen.calls().len(), 1);

    // Audited with server, tool, outcome and the digest, never values.
    let log = w.s.audit().await;
    let mcp: Vec<_> = log.iter().filter(|r| r.action == "mcp.tool").collect();
    assert!(mcp
        .iter()
        .any(|r| r.target.starts_with("gh search args=") && r.outcome == "forwarded"));
    assert!(
        mcp.iter()
            .any(|r| r.target.starts_with("gh admin_reset args=")
                && r.outcome == "denied:not_allowed")
    );
    for r in &log {
        assert!(!r.target.contains("gatehouse\""), "{r:?}");
        assert!(!format!("{r:?}").contains(SECRET_VALUE));
    }
    let _ = agent.cancel().await;
}

async fn a_gated_call_is_held_and_nothing_reaches_the_upstream(engine: Engine) {
    let w = world(engine, HELD).await;
    let agent = w.s.connect("gh", &w.agent).await;
    let result = agent
        .peer()
        .call_tool(call("delete_repo", json!({"repo": "prod", "force": true})))
        .await
        .unwrap();
    let answer = result.structured_content.clone().unwrap();
    assert_eq!(answer["status"], "pending", "{answer}");
    let id = answer["approval_id"].as_str().unwrap();
    assert!(
        w.s.upstream.seen.calls().is_empty(),
        "a held call went upstream"
    );

    // The inbox shows server, tool and arguments; the digest binds them.
    let pending = pending_approvals(&w).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["approval_id"], id);
    assert_eq!(pending[0]["verb"], "mcp.tool");
    assert_eq!(
        pending[0]["params"],
        json!({"server": "gh", "tool": "delete_repo", "arguments": {"repo": "prod", "force": true}})
    );
    // The audit log has the digest, not the arguments.
    let log = w.s.audit().await;
    let held = log
        .iter()
        .find(|r| r.action == "mcp.tool" && r.outcome == format!("held approval={id}"))
        .expect("the held call is audited");
    assert!(held.target.starts_with("gh delete_repo args="));
    assert!(
        log.iter().all(|r| !r.target.contains("prod")),
        "an argument value reached the audit log"
    );
    let _ = agent.cancel().await;

    // Whatever the credential: an api token of the owner's is held too.
    let (status, minted) =
        w.s.json(
            Method::POST,
            "/v1/tokens",
            Some(&w.alice),
            Some(json!({"class": "api", "subject": "ci", "scope": "secrets:write"})),
        )
        .await;
    assert_eq!(status, 201, "{minted}");
    let api = w.s.connect("gh", minted["token"].as_str().unwrap()).await;
    let result = api
        .peer()
        .call_tool(call("delete_repo", json!({"repo": "prod"})))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["status"], "pending");
    assert_eq!(pending_approvals(&w).await.len(), 2);
    assert!(
        w.s.upstream.seen.calls().is_empty(),
        "a held call went upstream"
    );
    let _ = api.cancel().await;
}

async fn an_approved_call_runs_once_with_the_stored_arguments(engine: Engine) {
    let w = world(engine, HELD).await;
    let agent = w.s.connect("gh", &w.agent).await;
    let result = agent
        .peer()
        .call_tool(call("delete_repo", json!({"repo": "old-fork"})))
        .await
        .unwrap();
    let id = result.structured_content.unwrap()["approval_id"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, body) = decide(&w, &id, "approve").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "executed", "{body}");
    assert_eq!(
        w.s.upstream.seen.calls(),
        [("delete_repo".to_string(), json!({"repo": "old-fork"}))]
    );

    // The result, sealed for the requester, is handed over once.
    let (status, first) =
        w.s.json(
            Method::GET,
            &format!("/v1/approvals/{id}"),
            Some(&w.agent),
            None,
        )
        .await;
    assert_eq!(status, 200, "{first}");
    let shown = first["result"]["tool_result"].to_string();
    assert!(shown.contains("delete_repo ran with"), "{first}");
    let (_, again) =
        w.s.json(
            Method::GET,
            &format!("/v1/approvals/{id}"),
            Some(&w.agent),
            None,
        )
        .await;
    assert!(again["result"].get("tool_result").is_none(), "{again}");
    // Deciders see that it ran, not what it answered.
    let (_, human) =
        w.s.json(
            Method::GET,
            &format!("/v1/approvals/{id}"),
            Some(&w.alice),
            None,
        )
        .await;
    assert!(!human.to_string().contains("ran with"), "{human}");

    // A second decision: 409, and no second run.
    let (status, body) = decide(&w, &id, "approve").await;
    assert_eq!(status, 409, "{body}");
    let (status, _) =
        w.s.json(
            Method::POST,
            &format!("/v1/approvals/{id}/decision"),
            Some(&w.op),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert!(status == 409 || status == 404, "{status}");
    tokio::time::sleep(Duration::from_millis(1500)).await; // a sweeper tick
    assert_eq!(w.s.upstream.seen.calls().len(), 1, "the call ran twice");
    let _ = agent.cancel().await;
}

/// A human's own session is not held: the gate runs the call at once
/// (audited), as it runs any gated verb for a human.
async fn a_human_session_runs_a_gated_tool_at_once(engine: Engine) {
    let w = world(engine, HELD).await;
    let human = w.s.connect("gh", &w.alice).await;
    let result = human
        .peer()
        .call_tool(call("delete_repo", json!({"repo": "mine"})))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert!(
        text_of(&result).contains("delete_repo ran with"),
        "{result:?}"
    );
    assert_eq!(
        w.s.upstream.seen.calls(),
        [("delete_repo".to_string(), json!({"repo": "mine"}))]
    );
    assert!(pending_approvals(&w).await.is_empty());
    let log = w.s.audit().await;
    assert!(log
        .iter()
        .any(|r| r.action == "mcp.tool" && r.target.starts_with("gh delete_repo args=")));
    let _ = human.cancel().await;
}

async fn a_waiting_call_gets_the_result_when_approved_within_the_hold(engine: Engine) {
    let w = world(engine, WAITS).await;
    let agent = w.s.connect("gh", &w.agent).await;
    let peer = agent.peer().clone();
    let waiting = tokio::spawn(async move {
        peer.call_tool(call("delete_repo", json!({"repo": "scratch"})))
            .await
    });
    let id = first_pending(&w).await;
    assert!(w.s.upstream.seen.calls().is_empty());
    let (status, body) = decide(&w, &id, "approve").await;
    assert_eq!(status, 200, "{body}");
    let result = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert!(
        text_of(&result).contains("delete_repo ran with"),
        "{result:?}"
    );
    assert_eq!(w.s.upstream.seen.calls().len(), 1);
    // Taken by the waiting call: a poll no longer shows it.
    let (_, polled) =
        w.s.json(
            Method::GET,
            &format!("/v1/approvals/{id}"),
            Some(&w.agent),
            None,
        )
        .await;
    assert!(polled["result"].get("tool_result").is_none(), "{polled}");
    let _ = agent.cancel().await;
}

/// Counts the progress notifications a client receives.
#[derive(Clone, Default)]
struct Progress(Arc<AtomicUsize>);

impl rmcp::ClientHandler for Progress {
    async fn on_progress(
        &self,
        _params: rmcp::model::ProgressNotificationParam,
        _ctx: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

async fn a_waiting_call_keeps_its_client_patient_with_progress(engine: Engine) {
    let w = world(engine, WAITS).await;
    let progress = Progress::default();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp/gh", w.s.url))
            .auth_header(w.agent.clone()),
    );
    let agent = progress.clone().serve(transport).await.unwrap();
    let mut params = call("delete_repo", json!({"repo": "slow"}));
    params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String("wait-1".into()),
    )));
    let peer = agent.peer().clone();
    let waiting = tokio::spawn(async move { peer.call_tool(params).await });
    let id = first_pending(&w).await;
    for _ in 0..100 {
        if progress.0.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        progress.0.load(Ordering::SeqCst) >= 2,
        "no progress while waiting"
    );
    decide(&w, &id, "approve").await;
    let result = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        text_of(&result).contains("delete_repo ran with"),
        "{result:?}"
    );
    let _ = agent.cancel().await;
}

async fn denial_and_expiry_end_the_waiting_call_naming_the_decision(engine: Engine) {
    let w = world(engine, WAITS).await;
    let agent = w.s.connect("gh", &w.agent).await;

    let peer = agent.peer().clone();
    let waiting = tokio::spawn(async move {
        peer.call_tool(call("delete_repo", json!({"repo": "a"})))
            .await
    });
    let id = first_pending(&w).await;
    let (status, body) = decide(&w, &id, "deny").await;
    assert_eq!(status, 200, "{body}");
    let denied = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(denied.is_error, Some(true));
    assert!(text_of(&denied).contains("denied"), "{denied:?}");
    assert!(text_of(&denied).contains("checked by alice"), "{denied:?}");

    let peer = agent.peer().clone();
    let waiting = tokio::spawn(async move {
        peer.call_tool(call("delete_repo", json!({"repo": "b"})))
            .await
    });
    let id = first_pending(&w).await;
    w.s.clock.advance(3601);
    let expired = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(expired.is_error, Some(true));
    assert!(text_of(&expired).contains("expired"), "{expired:?}");
    assert!(text_of(&expired).contains(&id), "{expired:?}");
    assert!(w.s.upstream.seen.calls().is_empty());
    let _ = agent.cancel().await;
}

async fn a_revoked_token_ends_the_session_and_its_waiting_call(engine: Engine) {
    let w = world(engine, WAITS).await;
    let agent = w.s.connect("gh", &w.agent).await;
    agent.peer().list_all_tools().await.unwrap();
    let peer = agent.peer().clone();
    let waiting = tokio::spawn(async move {
        peer.call_tool(call("delete_repo", json!({"repo": "c"})))
            .await
    });
    first_pending(&w).await;

    let (status, body) =
        w.s.json(
            Method::POST,
            "/v1/tokens/revoke",
            Some(&w.alice),
            Some(json!({"subject": "bot"})),
        )
        .await;
    assert!(status == 200 || status == 204, "{body}");
    let ended = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .unwrap()
        .unwrap();
    let r = ended.unwrap();
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(text_of(&r).contains("revoked"), "{r:?}");
    // The next message is refused by the verifier.
    assert!(agent.peer().list_all_tools().await.is_err());
    assert!(w.s.try_connect("gh", &w.agent).await.is_err());
    assert!(w.s.upstream.seen.calls().is_empty());
    let _ = agent.cancel().await;
}

async fn another_owners_server_is_unreachable_and_unknown(engine: Engine) {
    let w = world(engine, HELD).await;
    let bob = w.s.owner(&w.op, BOB).await;
    let bobs_agent = w.s.agent_token(&bob, "bot").await;
    let err = w.s.try_connect("gh", &bobs_agent).await.unwrap_err();
    assert!(!err.is_empty());
    let (status, _) =
        w.s.json(Method::GET, "/v1/mcp/servers/gh", Some(&bob), None)
            .await;
    assert_eq!(status, 404);
    let (status, _) =
        w.s.json(Method::GET, "/v1/mcp/servers/nope", Some(&bob), None)
            .await;
    assert_eq!(status, 404);
    // Same answer for a name nobody has, at the gateway.
    let raw = |name: &str| {
        w.s.client
            .post(format!("{}/mcp/{name}", w.s.url))
            .bearer_auth(&bobs_agent)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
    };
    assert_eq!(raw("gh").await.unwrap().status(), 404);
    assert_eq!(raw("nope").await.unwrap().status(), 404);
    assert!(w.s.upstream.seen.calls().is_empty());
    assert!(w.s.upstream.seen.auth().is_empty());
}

async fn saving_checks_the_url_the_secret_and_the_gate(engine: Engine) {
    let w = world(engine, HELD).await;
    let own = w.s.url.trim_start_matches("http://").to_string();
    for (url, reason) in [
        ("http://93.184.216.34/mcp".to_string(), "plain_http"),
        ("https://10.1.2.3/mcp".to_string(), "ssrf"),
        ("https://localhost/mcp".to_string(), "ssrf"),
        (format!("https://{own}/mcp"), "own_listener"),
        ("https://mcp.example.com:8443/mcp".to_string(), "port"),
    ] {
        let mut body = w.s.server_body("other", &["*"], &[]);
        body["url"] = json!(url);
        let (status, answer) = w.s.save_server(&w.alice, body).await;
        assert_eq!(status, 400, "{url}: {answer}");
        assert_eq!(answer["error"]["code"], "url_refused", "{url}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{url}: {message}");
    }
    let mut body = w.s.server_body("other", &["*"], &[]);
    body["auth"]["secret"] = json!("MISSING");
    let (status, answer) = w.s.save_server(&w.alice, body).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer.to_string().contains("MISSING"));
    let mut body = w.s.server_body("Bad Name", &["*"], &[]);
    body["tools"]["allow"] = json!(["ok"]);
    assert_eq!(w.s.save_server(&w.alice, body).await.0, 400);
    let (status, answer) =
        w.s.save_server(&w.alice, w.s.server_body("x", &["a b"], &[]))
            .await;
    assert_eq!(status, 400, "{answer}");

    // A non-interactive save is policy.change, held for a human.
    let (status, minted) =
        w.s.json(
            Method::POST,
            "/v1/tokens",
            Some(&w.alice),
            Some(json!({"class": "api", "subject": "ci", "scope": "secrets:write"})),
        )
        .await;
    assert_eq!(status, 201, "{minted}");
    let api = minted["token"].as_str().unwrap();
    let (status, held) =
        w.s.json(
            Method::POST,
            "/v1/mcp/servers",
            Some(api),
            Some(w.s.server_body("later", &["*"], &[])),
        )
        .await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(held["verb"], "policy.change");
    let (status, _) =
        w.s.json(Method::GET, "/v1/mcp/servers/later", Some(&w.alice), None)
            .await;
    assert_eq!(status, 404, "held: not saved yet");
    let id = held["approval_id"].as_str().unwrap();
    let (status, body) = decide(&w, id, "approve").await;
    assert_eq!(status, 200, "{body}");
    let (status, saved) =
        w.s.json(Method::GET, "/v1/mcp/servers/later", Some(&w.alice), None)
            .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["auth"]["secret"], "GH");
    assert!(!saved.to_string().contains(SECRET_VALUE));

    // Listing and deleting.
    let (_, list) =
        w.s.json(Method::GET, "/v1/mcp/servers", Some(&w.alice), None)
            .await;
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, [json!("gh"), json!("later")]);
    let (status, _) =
        w.s.json(
            Method::DELETE,
            "/v1/mcp/servers/later",
            Some(&w.alice),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) =
        w.s.json(
            Method::DELETE,
            "/v1/mcp/servers/later",
            Some(&w.alice),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

async fn a_saved_url_is_refused_at_use_once_its_address_changed(engine: Engine) {
    let w = world(engine, HELD).await;
    let World { s, agent, .. } = w;
    // The same name now maps to an internal address nobody allowed.
    let s = s
        .restart_with(&[("GATEHOUSE_EGRESS_STATIC_HOSTS", "mcp.test=10.9.9.9")])
        .await;
    let client = s.connect("gh", &agent).await;
    let err = client
        .peer()
        .list_all_tools()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ssrf"), "{err}");
    let result = client
        .peer()
        .call_tool(call("search", json!({"q": "x"})))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(text_of(&result).contains("ssrf"), "{result:?}");
    assert!(s.upstream.seen.calls().is_empty());
    let log = s.audit().await;
    assert!(
        log.iter().any(|r| r.action == "outbound.refused"),
        "the refusal is audited"
    );
    let _ = client.cancel().await;
}

async fn a_secret_goes_only_to_the_hosts_it_is_bound_to(engine: Engine) {
    let w = world(engine, HELD).await;
    // A secret bound to other hosts cannot be named by a server.
    let (status, body) =
        w.s.json(
            Method::PUT,
            "/v1/secrets/ELSEWHERE",
            Some(&w.alice),
            Some(json!({"value": "v-elsewhere", "allowed_hosts": ["api.github.com"]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut body = w.s.server_body("elsewhere", &["*"], &[]);
    body["auth"]["secret"] = json!("ELSEWHERE");
    let (status, refused) = w.s.save_server(&w.alice, body).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "secret_not_bound");
    assert!(!refused.to_string().contains("v-elsewhere"));

    // GH rebound away from the server's host after the save: the header
    // is never built again, and nothing reaches the upstream.
    let (status, body) =
        w.s.json(
            Method::PUT,
            "/v1/secrets/GH",
            Some(&w.alice),
            Some(json!({"value": SECRET_VALUE, "allowed_hosts": ["api.github.com"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let client = w.s.connect("gh", &w.agent).await;
    let result = client
        .peer()
        .call_tool(call("search", json!({"q": "x"})))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(text_of(&result).contains("not bound"), "{result:?}");
    assert!(w.s.upstream.seen.calls().is_empty());
    let _ = client.cancel().await;
}

on_both_engines!(
    tools_list_shows_only_allowed_tools_and_the_owners_secret_goes_upstream_only,
    a_gated_call_is_held_and_nothing_reaches_the_upstream,
    an_approved_call_runs_once_with_the_stored_arguments,
    a_human_session_runs_a_gated_tool_at_once,
    a_waiting_call_gets_the_result_when_approved_within_the_hold,
    a_waiting_call_keeps_its_client_patient_with_progress,
    denial_and_expiry_end_the_waiting_call_naming_the_decision,
    a_revoked_token_ends_the_session_and_its_waiting_call,
    another_owners_server_is_unreachable_and_unknown,
    saving_checks_the_url_the_secret_and_the_gate,
    a_saved_url_is_refused_at_use_once_its_address_changed,
    a_secret_goes_only_to_the_hosts_it_is_bound_to,
);
