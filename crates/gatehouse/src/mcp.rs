//! `gatehouse mcp`: Gatehouse's own MCP server over stdio, and the MCP
//! client configuration for an agent.
//!
//! The stdio server is a relay: each JSON-RPC message read from standard
//! input (one per line, the MCP stdio framing) is posted to the running
//! server's `/mcp` (Streamable HTTP) with `GATEHOUSE_TOKEN`, and every
//! message of the answer (a JSON body or an event stream) is written to
//! standard output, one per line. The tools, their rules and the checks on
//! every message (the one verifier, revocation, session binding) exist
//! once, on the server; the relay only carries bytes and the session id.
//! Messages are relayed in order, one at a time. A token the server
//! refuses (revoked, expired) ends the relay with an error for the
//! pending request; an ended session (`404`) is reported and forgotten,
//! so the client may initialise again. At end of input the session is
//! closed (`DELETE`).

use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::cli::McpAction;
use crate::remote::{Remote, RemoteArgs};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

pub async fn run(remote: &RemoteArgs, action: Option<McpAction>) -> Result<ExitCode> {
    let remote = Remote::new(remote)?;
    match action {
        None => relay(&remote).await,
        Some(McpAction::Config {
            agent,
            scope,
            ttl,
            format,
        }) => config(&remote, &agent, &scope, ttl, &format).await,
    }
}

/// What the relay carries between messages.
#[derive(Default)]
struct Relay {
    session: Option<String>,
    protocol: Option<String>,
}

/// Why the relay stops.
enum Stop {
    /// The server refused the token: nothing more can succeed.
    Refused,
}

async fn relay(remote: &Remote) -> Result<ExitCode> {
    let endpoint = format!("{}/mcp", remote.base());
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    let mut state = Relay::default();
    let mut code = ExitCode::SUCCESS;
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => {
                emit(
                    &mut out,
                    &error_reply(&Value::Null, -32700, "parse error: not JSON"),
                )
                .await?;
                continue;
            }
        };
        match forward(remote, &endpoint, &mut state, &message, &line, &mut out).await {
            Ok(()) => {}
            Err(Stop::Refused) => {
                eprintln!("gatehouse mcp: Gatehouse refused the token (revoked or expired)");
                code = ExitCode::FAILURE;
                break;
            }
        }
    }
    if let Some(session) = state.session.take() {
        let _ = remote
            .http()
            .delete(&endpoint)
            .bearer_auth(remote.token())
            .header(SESSION_HEADER, session)
            .send()
            .await;
    }
    Ok(code)
}

/// Posts one message and relays the answer.
async fn forward(
    remote: &Remote,
    endpoint: &str,
    state: &mut Relay,
    message: &Value,
    text: &str,
    out: &mut tokio::io::Stdout,
) -> Result<(), Stop> {
    // Requests carry an id and a method; a reply is owed for them only.
    let id = match (message.get("id"), message.get("method")) {
        (Some(id), Some(_)) => Some(id.clone()),
        _ => None,
    };
    let fail = |code: i64, text: String| id.as_ref().map(|id| error_reply(id, code, &text));
    let mut request = remote
        .http()
        .post(endpoint)
        .bearer_auth(remote.token())
        .header(ACCEPT, "application/json, text/event-stream")
        .header(CONTENT_TYPE, "application/json")
        .body(text.to_string());
    if let Some(s) = &state.session {
        request = request.header(SESSION_HEADER, s.as_str());
    }
    if let Some(v) = &state.protocol {
        request = request.header(VERSION_HEADER, v.as_str());
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            let reply = fail(
                -32603,
                format!("cannot reach Gatehouse at {}: {e}", remote.base()),
            );
            emit_opt(out, reply).await;
            return Ok(());
        }
    };
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        emit_opt(
            out,
            fail(
                -32001,
                "Gatehouse refused the token (revoked or expired)".into(),
            ),
        )
        .await;
        return Err(Stop::Refused);
    }
    if status == StatusCode::NOT_FOUND && state.session.is_some() {
        state.session = None;
        emit_opt(
            out,
            fail(-32001, "the MCP session ended; initialize again".into()),
        )
        .await;
        return Ok(());
    }
    if let Some(s) = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        state.session = Some(s.to_string());
    }
    if !status.is_success() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let why = body["error"]["message"].as_str().unwrap_or("");
        emit_opt(
            out,
            fail(
                -32603,
                format!("Gatehouse answered {}: {why}", status.as_u16()),
            ),
        )
        .await;
        return Ok(());
    }
    let is_stream = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if is_stream {
        relay_stream(response, state, out).await;
    } else {
        let body = response.text().await.unwrap_or_default();
        if !body.trim().is_empty() {
            relay_message(&body, state, out).await;
        }
    }
    Ok(())
}

/// Relays every `data` of an event stream, until the server ends it.
async fn relay_stream(
    mut response: reqwest::Response,
    state: &mut Relay,
    out: &mut tokio::io::Stdout,
) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        let normalised = buffer.replace("\r\n", "\n");
        buffer = normalised;
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            let data = data.join("\n");
            if !data.trim().is_empty() {
                relay_message(&data, state, out).await;
            }
        }
    }
}

/// Writes one server message, noting the negotiated protocol version.
async fn relay_message(text: &str, state: &mut Relay, out: &mut tokio::io::Stdout) {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if let Some(v) = message["result"]["protocolVersion"].as_str() {
        state.protocol = Some(v.to_string());
    }
    let _ = emit(out, &message).await;
}

fn error_reply(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

async fn emit(out: &mut tokio::io::Stdout, message: &Value) -> std::io::Result<()> {
    let mut line = message.to_string();
    line.push('\n');
    out.write_all(line.as_bytes()).await?;
    out.flush().await
}

async fn emit_opt(out: &mut tokio::io::Stdout, message: Option<Value>) {
    if let Some(m) = message {
        let _ = emit(out, &m).await;
    }
}

/// `gatehouse mcp config --agent NAME`: a fresh agent token (minted by the
/// running server for the caller's session) and the MCP client
/// configuration that points at `/mcp` and at each of the owner's gateway
/// servers (`/mcp/{name}`, from `GET /v1/mcp/servers`; a server without
/// that route lists none).
async fn config(
    remote: &Remote,
    agent: &str,
    scope: &str,
    ttl: Option<i64>,
    format: &str,
) -> Result<ExitCode> {
    if !matches!(format, "json" | "claude") {
        bail!("--format must be json or claude");
    }
    let mut body = json!({ "class": "agent", "subject": agent, "scope": scope });
    if let Some(ttl) = ttl {
        body["ttl_seconds"] = json!(ttl);
    }
    let minted = remote.call(Method::POST, "/v1/tokens", Some(body)).await?;
    let token = zeroize::Zeroizing::new(
        minted["token"]
            .as_str()
            .ok_or_else(|| anyhow!("Gatehouse answered no token"))?
            .to_string(),
    );
    let gateways = gateway_names(remote).await?;
    let servers = client_servers(remote.base(), &token, &gateways);
    match format {
        "claude" => {
            for (name, server) in servers.as_object().into_iter().flatten() {
                println!(
                    "claude mcp add-json {name} '{}'",
                    server.to_string().replace('\'', "'\\''")
                );
            }
        }
        _ => println!("{:#}", json!({ "mcpServers": servers })),
    }
    eprintln!(
        "gatehouse mcp: agent token for {agent} (jti {}) expires at {}",
        minted["jti"].as_str().unwrap_or("?"),
        minted["expires_at"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}

/// The owner's gateway servers; none when the server has no gateway.
async fn gateway_names(remote: &Remote) -> Result<Vec<String>> {
    match remote.call(Method::GET, "/v1/mcp/servers", None).await {
        Ok(list) => Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["name"].as_str().map(str::to_string))
            .collect()),
        Err(e) if e.to_string().contains("answered 404") => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// `{"gatehouse": {...}, "gatehouse-<name>": {...}}`: Streamable HTTP
/// entries in the shape Claude Code's `.mcp.json` (and most clients) read.
pub fn client_servers(base: &str, token: &str, gateways: &[String]) -> Value {
    let entry = |url: String| {
        json!({
            "type": "http",
            "url": url,
            "headers": { "Authorization": format!("Bearer {token}") },
        })
    };
    let mut servers = serde_json::Map::new();
    servers.insert("gatehouse".into(), entry(format!("{base}/mcp")));
    for name in gateways {
        servers.insert(
            format!("gatehouse-{name}"),
            entry(format!("{base}/mcp/{name}")),
        );
    }
    Value::Object(servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_points_at_mcp_and_every_gateway_server() {
        let v = client_servers("https://gh.example", "tok", &["github".into()]);
        assert_eq!(v["gatehouse"]["url"], "https://gh.example/mcp");
        assert_eq!(v["gatehouse"]["type"], "http");
        assert_eq!(
            v["gatehouse-github"]["url"],
            "https://gh.example/mcp/github"
        );
        assert_eq!(
            v["gatehouse-github"]["headers"]["Authorization"],
            "Bearer tok"
        );
    }
}
