//! `gatehouse approvals list|approve|deny`: the approvals inbox for
//! humans, over the running server's API.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use crate::remote::{Remote, RemoteArgs};

#[derive(Subcommand)]
pub enum ApprovalsAction {
    /// List approvals (default: pending ones).
    List {
        /// pending, approved, executed, failed, denied, expired or all.
        #[arg(long, default_value = "pending")]
        status: String,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending request.
    Approve {
        /// Ids are base64url and may begin with '-'.
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Deny a pending request.
    Deny {
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

pub async fn run(remote: &RemoteArgs, action: ApprovalsAction) -> Result<ExitCode> {
    let remote = Remote::new(remote)?;
    match action {
        ApprovalsAction::List { status, json } => {
            let query = if status == "all" {
                String::new()
            } else {
                format!("?status={status}")
            };
            let list = remote
                .call(Method::GET, &format!("/v1/approvals{query}"), None)
                .await?;
            let items = list.as_array().cloned().unwrap_or_default();
            for a in &items {
                if json {
                    println!("{a}");
                } else {
                    println!("{}", summary(a));
                }
            }
            if items.is_empty() && !json {
                eprintln!("no {status} approvals");
            }
        }
        ApprovalsAction::Approve { id, reason } => decide(&remote, &id, "approve", &reason).await?,
        ApprovalsAction::Deny { id, reason } => decide(&remote, &id, "deny", &reason).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn decide(remote: &Remote, id: &str, decision: &str, reason: &str) -> Result<()> {
    let after = remote
        .call(
            Method::POST,
            &format!("/v1/approvals/{id}/decision"),
            Some(json!({ "decision": decision, "reason": reason })),
        )
        .await?;
    println!("{}", summary(&after));
    if let Some(error) = after["error"].as_str() {
        eprintln!("failed: {error}");
    }
    Ok(())
}

/// One line: id, status, verb, who asked, and what (never a secret value:
/// the server shows secrets only as length and fingerprint).
fn summary(a: &Value) -> String {
    format!(
        "{}  {:<8}  {:<17}  {}/{}  {}/{} approvals  expires {}  {}",
        a["approval_id"].as_str().unwrap_or("?"),
        a["status"].as_str().unwrap_or("?"),
        a["verb"].as_str().unwrap_or("?"),
        a["requester"]["cls"].as_str().unwrap_or("?"),
        a["requester"]["subject"].as_str().unwrap_or("?"),
        a["approvals"],
        a["required"],
        a["expires_at"].as_str().unwrap_or("?"),
        a["params"],
    )
}
