//! `gatehouse exec`: one command run as a job behind the egress proxy.
//!
//! Creates the job over the API (so the server's rules apply: grants,
//! reserved variables, allow list), writes a CA bundle (the system roots
//! plus Gatehouse's CA, so tunnelled hosts still verify) into a private
//! temporary directory, and starts the command with the job's placeholders
//! and the proxy and CA variables that common clients read (curl, git,
//! Python requests, Node, OpenSSL). The job token appears only in the
//! proxy URL. The command's exit code is passed through; the job is
//! deleted (its token revoked) when the command ends, whatever the outcome.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::ExecArgs;
use crate::remote::Remote;

/// Where Debian-, Alpine- and Red Hat-like systems keep their roots.
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
];
const CA_VARS: [&str; 5] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
];
const PROXY_VARS: [&str; 4] = ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"];

fn grants(specs: &[String]) -> Result<Vec<Value>> {
    specs
        .iter()
        .map(|g| {
            let (env, secret) = g
                .split_once('=')
                .filter(|(e, s)| !e.is_empty() && !s.is_empty())
                .ok_or_else(|| anyhow!("--grant {g:?} must be ENV=secret"))?;
            Ok(json!({"env_var": env, "secret": secret, "mode": "placeholder"}))
        })
        .collect()
}

/// The proxy address the command should use: `--proxy`, else what the
/// server reports (with the API's host when it listens on all addresses).
fn proxy_address(explicit: Option<&str>, reported: Option<&str>, api: &str) -> Result<String> {
    if let Some(p) = explicit {
        return Ok(p.trim_start_matches("http://").to_string());
    }
    let reported = reported
        .ok_or_else(|| anyhow!("the server did not report its proxy address; pass --proxy"))?;
    let addr: std::net::SocketAddr = reported
        .parse()
        .map_err(|_| anyhow!("the server reported a bad proxy address"))?;
    if addr.ip().is_unspecified() {
        let url = reqwest::Url::parse(api).context("--url")?;
        let host = url.host_str().ok_or_else(|| anyhow!("--url has no host"))?;
        return Ok(format!("{host}:{}", addr.port()));
    }
    Ok(addr.to_string())
}

fn write_bundle(dir: &Path, gatehouse_ca: &str) -> Result<std::path::PathBuf> {
    let mut bundle = String::new();
    if let Some(system) = SYSTEM_BUNDLES
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
    {
        bundle.push_str(&system);
        bundle.push('\n');
    }
    bundle.push_str(gatehouse_ca);
    let path = dir.join("gatehouse-ca-bundle.pem");
    std::fs::write(&path, bundle).with_context(|| path.display().to_string())?;
    Ok(path)
}

pub async fn exec(args: ExecArgs) -> Result<ExitCode> {
    let remote = Remote::new(&args.remote)?;
    let mut body = json!({"agent": args.agent, "grants": grants(&args.grant)?});
    if !args.allow_host.is_empty() {
        body["egress"] = json!({"allow_hosts": args.allow_host});
    }
    if let Some(ttl) = args.ttl {
        body["ttl_seconds"] = json!(ttl);
    }
    let (headers, ca_pem) = remote.get_public("/v1/egress/ca.pem").await?;
    let reported = headers
        .get("gatehouse-egress-proxy")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let proxy = proxy_address(args.proxy.as_deref(), reported.as_deref(), remote.base())?;

    let job = remote
        .call(Method::POST, "/v1/jobs", Some(body))
        .await
        .context("creating the job")?;
    if let Some(id) = job["approval_id"].as_str() {
        // A value grant asked for by an agent or api token waits for a
        // human (`job.grant_values`); the job token is then shown once,
        // to this token, at the approval.
        anyhow::bail!(
            "the job waits for a human's approval (job.grant_values): /v1/approvals/{id}"
        );
    }
    let job_id = job["job_id"].as_str().unwrap_or_default().to_string();
    let job_token = job["job_token"].as_str().unwrap_or_default().to_string();
    let result = run(&args.command, &job, &job_token, &proxy, &ca_pem).await;
    if let Err(e) = remote
        .call(Method::DELETE, &format!("/v1/jobs/{job_id}"), None)
        .await
    {
        eprintln!("gatehouse: could not delete job {job_id}: {e}");
    }
    result
}

async fn run(
    command: &[String],
    job: &Value,
    job_token: &str,
    proxy: &str,
    ca_pem: &str,
) -> Result<ExitCode> {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| anyhow!("no command given"))?;
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-exec-")
        .tempdir()?;
    let bundle = write_bundle(dir.path(), ca_pem)?;
    let proxy_url = format!("http://job:{job_token}@{proxy}");
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest);
    for var in ["NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env_remove(var);
    }
    for var in PROXY_VARS {
        cmd.env(var, &proxy_url);
    }
    for var in CA_VARS {
        cmd.env(var, &bundle);
    }
    if let Some(env) = job["env"].as_object() {
        for (k, v) in env {
            if let Some(v) = v.as_str() {
                cmd.env(k, v);
            }
        }
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    // Ctrl-C reaches the child (same process group); we wait for it to
    // finish so the job is deleted after it.
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = tokio::signal::ctrl_c() => continue,
        }
    };
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(sig)) => ExitCode::from(u8::try_from(128 + sig).unwrap_or(1)),
        (None, None) => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_env_equals_secret() {
        let g = grants(&["GH_TOKEN=gh".into(), "B=x.y".into()]).unwrap();
        assert_eq!(g[0]["env_var"], "GH_TOKEN");
        assert_eq!(g[1]["secret"], "x.y");
        for bad in ["GH_TOKEN", "=gh", "GH="] {
            assert!(grants(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxy_address_prefers_the_flag_then_the_report() {
        let api = "http://10.9.8.7:8270";
        assert_eq!(
            proxy_address(Some("h:1"), Some("127.0.0.1:2"), api).unwrap(),
            "h:1"
        );
        assert_eq!(
            proxy_address(None, Some("127.0.0.1:2"), api).unwrap(),
            "127.0.0.1:2"
        );
        assert_eq!(
            proxy_address(None, Some("0.0.0.0:8271"), api).unwrap(),
            "10.9.8.7:8271"
        );
        assert!(proxy_address(None, None, api).is_err());
    }
}
