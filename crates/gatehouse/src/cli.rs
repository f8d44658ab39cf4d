//! Command-line grammar.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Credential and authority gateway for AI agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the configuration comes from; shared by every store command.
#[derive(Args, Clone, Default)]
pub struct ConfigArgs {
    /// Configuration file (default: ./gatehouse.toml when present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Store URL, overriding the configuration (sqlite://… or postgres://…).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the API server.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print the effective configuration (secrets masked) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Signing and master keys.
    Keys {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Tokens: the kill switch, written straight to the store, so it works
    /// while the API is down.
    Token {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        action: TokenAction,
    },
    /// The approvals inbox: list, approve or deny held requests (talks to
    /// the running server as a human session).
    Approvals {
        #[command(flatten)]
        remote: crate::remote::RemoteArgs,
        #[command(subcommand)]
        action: crate::approvals::ApprovalsAction,
    },
    /// Run a command as a job behind the egress proxy: creates the job,
    /// gives the command its placeholders, the proxy and Gatehouse's CA,
    /// passes its exit code through and deletes the job afterwards.
    Exec(ExecArgs),
    /// The audit log.
    Audit {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Gatehouse's own MCP server over stdio: a relay to the running
    /// server's `/mcp` with GATEHOUSE_TOKEN (point an MCP client's stdio
    /// command at `gatehouse mcp`); `mcp config` wires an agent up.
    Mcp {
        #[command(flatten)]
        remote: crate::remote::RemoteArgs,
        #[command(subcommand)]
        action: Option<McpAction>,
    },
    /// Upstream credentials, through the running server.
    Upstream {
        #[command(flatten)]
        remote: crate::remote::RemoteArgs,
        #[command(subcommand)]
        action: UpstreamAction,
    },
}

#[derive(Subcommand)]
pub enum UpstreamAction {
    /// Hand over a personal access token, read from standard input (never
    /// from the command line, where other users and shell history see it).
    /// Gatehouse checks it, exchanges it for a short-lived token it
    /// rotates, and revokes it.
    SetCredential {
        /// The upstream's name, as configured.
        name: String,
    },
    /// Show one upstream's status, or every upstream you own.
    Status { name: Option<String> },
}

#[derive(Subcommand)]
pub enum McpAction {
    /// Mint a fresh agent token (with your session) and print the MCP
    /// client configuration pointing the agent at /mcp and at each of your
    /// gateway servers (/mcp/{name}).
    Config {
        /// The registered agent.
        #[arg(long)]
        agent: String,
        /// Space-separated scopes for the agent token.
        #[arg(long, default_value = "")]
        scope: String,
        /// Token lifetime in seconds (default: the server's agent default).
        #[arg(long)]
        ttl: Option<i64>,
        /// `json` (an .mcp.json document) or `claude` (`claude mcp
        /// add-json` commands).
        #[arg(long, default_value = "json")]
        format: String,
    },
}

#[derive(Subcommand)]
pub enum KeysAction {
    /// Start signing with a new key; the old one verifies until its tokens expire.
    Rotate,
    /// Re-wrap every owner data key and signing key under a new master key.
    /// The new key comes from GATEHOUSE_NEW_MASTER_KEY, or, when the master
    /// key lives in the data directory's key file, is generated there.
    RotateMaster,
    /// Make a new egress CA the signer of intercepted hosts' certificates;
    /// the previous one stays in GET /v1/egress/ca.pem (and keeps verifying)
    /// for egress.ca_overlap_seconds.
    RotateCa,
}

#[derive(Subcommand)]
pub enum TokenAction {
    /// Revoke one token by jti, every token of a subject (optionally of one
    /// owner), or every token of an owner, sessions included.
    Revoke {
        /// The token's jti (base64url: it may begin with '-').
        #[arg(allow_hyphen_values = true)]
        jti: Option<String>,
        /// Revoke every token of this subject (agent, job or api name).
        #[arg(long)]
        subject: Option<String>,
        /// Revoke every token of this owner; with --subject, limits it to this owner.
        #[arg(long)]
        owner: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum AuditAction {
    /// Recompute the hash chain; name the first broken record.
    Verify,
    /// Write the log as JSON lines to standard output.
    Export,
}

#[derive(Args, Clone)]
pub struct ExecArgs {
    /// The registered agent the job runs as.
    #[arg(long)]
    pub agent: String,
    /// ENV=secret grants (placeholder mode), comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub grant: Vec<String>,
    /// Hosts the job may reach (exact, *.suffix or *); default: the hosts
    /// its secrets are bound to.
    #[arg(long = "allow-host")]
    pub allow_host: Vec<String>,
    /// Job lifetime in seconds (default: the server's).
    #[arg(long)]
    pub ttl: Option<i64>,
    /// The running server, and a token allowed to create jobs (session,
    /// api or the agent's own).
    #[command(flatten)]
    pub remote: crate::remote::RemoteArgs,
    /// The egress proxy as host:port (default: what the server reports).
    #[arg(long, env = "GATEHOUSE_PROXY")]
    pub proxy: Option<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn ids_that_begin_with_a_hyphen_are_ids_not_flags() {
        // Random ids are base64url: one in 64 begins with '-'.
        let cli = Cli::try_parse_from([
            "gatehouse",
            "approvals",
            "approve",
            "-9aBc",
            "--reason",
            "ok",
        ])
        .unwrap();
        match cli.command {
            Command::Approvals {
                action: crate::approvals::ApprovalsAction::Approve { id, reason },
                ..
            } => assert_eq!((id.as_str(), reason.as_str()), ("-9aBc", "ok")),
            _ => panic!("parsed as another command"),
        }
        let cli = Cli::try_parse_from(["gatehouse", "approvals", "deny", "-x"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Approvals {
                action: crate::approvals::ApprovalsAction::Deny { ref id, .. },
                ..
            } if id == "-x"
        ));
        let cli = Cli::try_parse_from(["gatehouse", "token", "revoke", "-jti_x"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Token {
                action: TokenAction::Revoke { jti: Some(ref j), .. },
                ..
            } if j == "-jti_x"
        ));
    }
}
