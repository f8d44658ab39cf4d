//! `gatehouse mcp` through the real binary: an MCP client (rmcp) over the
//! relay's standard input and output, against a running `gatehouse
//! serve`; and `gatehouse mcp config`, which wires an agent up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};
use support::{Sandbox, Server};

async fn post(server: &Server, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = server
        .http
        .post(server.at(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn agent_token(server: &Server, session: &str, scope: &str) -> String {
    let (status, _) = post(server, session, "/v1/agents", json!({ "name": "bot" })).await;
    assert!(status == 201 || status == 409);
    let (status, body) = post(
        server,
        session,
        "/v1/tokens",
        json!({ "class": "agent", "subject": "bot", "scope": scope }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// `gatehouse mcp` as a child, with an rmcp client on its stdio.
struct RelayChild {
    child: tokio::process::Child,
    client: RunningService<RoleClient, ()>,
}

async fn stdio(sandbox: &Sandbox, server: &Server, token: &str) -> RelayChild {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("mcp")
        .current_dir(sandbox.root())
        .env_clear()
        .env("HOME", sandbox.root())
        .env("GATEHOUSE_URL", &server.url)
        .env("GATEHOUSE_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let inp = child.stdin.take().unwrap();
    let client = ().serve((out, inp)).await.unwrap();
    RelayChild { child, client }
}

async fn call(
    c: &RunningService<RoleClient, ()>,
    name: &str,
    args: Value,
) -> Result<Value, String> {
    let params = CallToolRequestParams::new(name.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default());
    c.call_tool(params)
        .await
        .map(|r| r.structured_content.unwrap_or(Value::Null))
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_stdio_relay_serves_the_same_tools_and_holds_gated_verbs() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    let op = server.claim_operator("op@example.com").await;
    let bot = agent_token(&server, &op, "secrets:write").await;
    let mut relay = stdio(&sandbox, &server, &bot).await;
    let tools: Vec<String> = relay
        .client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(tools.contains(&"secret_write".to_string()), "{tools:?}");
    assert!(!tools.contains(&"token_mint_api".to_string()), "{tools:?}");
    let me = call(&relay.client, "whoami", json!({})).await.unwrap();
    assert_eq!(me["sub"], "bot");
    assert_eq!(me["cls"], "agent");

    let held = call(
        &relay.client,
        "secret_write",
        json!({"name": "GH", "value": "v"}),
    )
    .await
    .unwrap();
    assert_eq!(held["status"], "pending", "{held}");
    let id = held["approval_id"].as_str().unwrap();
    let secrets: Value = server
        .get_with_token("/v1/secrets", &op)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(secrets, json!([]), "held: nothing written");
    let (status, _) = post(
        &server,
        &op,
        &format!("/v1/approvals/{id}/decision"),
        json!({"decision": "approve"}),
    )
    .await;
    assert_eq!(status, 200);
    let done = call(&relay.client, "approval_status", json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(done["status"], "executed", "{done}");

    // Revoked mid-session: the next message fails and the relay ends.
    let (status, _) = post(&server, &op, "/v1/tokens/revoke", json!({"jti": me["jti"]})).await;
    assert_eq!(status, 200);
    assert!(call(&relay.client, "whoami", json!({})).await.is_err());
    let exited = tokio::time::timeout(Duration::from_secs(15), relay.child.wait()).await;
    let status = exited.expect("the relay ended").unwrap();
    assert!(!status.success());
}

#[tokio::test]
async fn mcp_config_mints_an_agent_token_and_points_at_mcp() {
    let sandbox = Sandbox::new();
    let server = sandbox.serve().await;
    let op = server.claim_operator("op@example.com").await;
    let (status, _) = post(&server, &op, "/v1/agents", json!({ "name": "bot" })).await;
    assert_eq!(status, 201);
    let out = sandbox
        .cmd(&[
            "mcp",
            "config",
            "--agent",
            "bot",
            "--scope",
            "secrets:write",
        ])
        .env("GATEHOUSE_URL", &server.url)
        .env("GATEHOUSE_TOKEN", &op)
        .run()
        .await;
    out.assert_success();
    let config: Value = serde_json::from_str(&out.stdout).unwrap();
    let entry = &config["mcpServers"]["gatehouse"];
    assert_eq!(entry["type"], "http");
    assert_eq!(entry["url"], format!("{}/mcp", server.url));
    let token = entry["headers"]["Authorization"]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    assert_ne!(token, op, "a fresh agent token, not the caller's");
    let me: Value = server
        .get_with_token("/v1/auth/whoami", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["cls"], "agent");
    assert_eq!(me["sub"], "bot");
    assert_eq!(me["scope"], "secrets:write");
    assert!(!out.stderr.contains(&token) && !out.stderr.contains(&op));

    // An unknown agent: the server's answer, no configuration.
    let out = sandbox
        .cmd(&["mcp", "config", "--agent", "nobody"])
        .env("GATEHOUSE_URL", &server.url)
        .env("GATEHOUSE_TOKEN", &op)
        .run()
        .await;
    out.assert_refused();
    assert!(out.stderr.contains("unknown_agent"), "{out:?}");
    assert!(out.stdout.is_empty());
}
