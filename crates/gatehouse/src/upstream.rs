//! `gatehouse upstream …`: talks to a running server with the caller's
//! session token. The pasted token is read from standard input only, into
//! a zeroizing buffer, and sent once in a JSON body; it never appears in
//! argv, the environment or any output.

use anyhow::{bail, Result};
use reqwest::Method;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use zeroize::Zeroizing;

use crate::cli::UpstreamAction;
use crate::remote::{Remote, RemoteArgs};

pub async fn run(remote: &RemoteArgs, action: UpstreamAction) -> Result<ExitCode> {
    let remote = Remote::new(remote)?;
    let body = match action {
        UpstreamAction::SetCredential { name } => {
            let pasted = read_pasted()?;
            // Built by hand so the only copies are zeroizing buffers and
            // the request body itself.
            let body = Zeroizing::new(serde_json::json!({ "token": pasted.as_str() }).to_string());
            remote
                .call_with_text(
                    Method::PUT,
                    &format!("/v1/upstreams/{}/credential", path_segment(&name)),
                    Some(body),
                )
                .await?
        }
        UpstreamAction::Status { name: Some(name) } => {
            remote
                .call(
                    Method::GET,
                    &format!("/v1/upstreams/{}/status", path_segment(&name)),
                    None,
                )
                .await?
        }
        UpstreamAction::Status { name: None } => {
            remote.call(Method::GET, "/v1/upstreams", None).await?
        }
    };
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
