//! `gatehouse upstream …`: talks to a running server with the caller's
//! session token. The pasted token is read from standard input only, into
//! a zeroizing buffer, and sent once in a JSON body; it never appears in
//! argv, the environment or any output.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use zeroize::Zeroizing;

use crate::cli::{ServerArgs, UpstreamAction};

pub async fn run(server: &ServerArgs, action: UpstreamAction) -> Result<ExitCode> {
    let token = server
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow!("no credential: set GATEHOUSE_TOKEN or pass --token"))?;
    let base = server.url.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let response = match action {
        UpstreamAction::SetCredential { name } => {
            let pasted = read_pasted()?;
            // Built by hand so the only copy outside the zeroizing buffers
            // is the request body reqwest sends.
            let body = Zeroizing::new(serde_json::json!({ "token": pasted.as_str() }).to_string());
            http.put(format!(
                "{base}/v1/upstreams/{}/credential",
                path_segment(&name)
            ))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
        }
        UpstreamAction::Status { name: Some(name) } => {
            http.get(format!(
                "{base}/v1/upstreams/{}/status",
                path_segment(&name)
            ))
            .bearer_auth(token)
            .send()
            .await
        }
        UpstreamAction::Status { name: None } => {
            http.get(format!("{base}/v1/upstreams"))
                .bearer_auth(token)
                .send()
                .await
        }
    }
    .with_context(|| format!("cannot reach Gatehouse at {base}"))?;
    let status = response.status();
    let text = response.text().await?;
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    if !status.is_success() {
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("request failed");
        let code = body["error"]["code"].as_str().unwrap_or("error");
        bail!("{} {code}: {message}", status.as_u16());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
    Ok(ExitCode::SUCCESS)
}

/// The whole of standard input (one line when it is a terminal), trimmed.
fn read_pasted() -> Result<Zeroizing<String>> {
    let mut stdin = std::io::stdin().lock();
    let mut raw = Zeroizing::new(String::new());
    if stdin.is_terminal() {
        eprint!("Paste the token and press Enter: ");
        std::io::BufRead::read_line(&mut stdin, &mut raw)?;
    } else {
        stdin.read_to_string(&mut raw)?;
    }
    let trimmed = Zeroizing::new(raw.trim().to_string());
    if trimmed.is_empty() {
        bail!("no token on standard input");
    }
    Ok(trimmed)
}

fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
