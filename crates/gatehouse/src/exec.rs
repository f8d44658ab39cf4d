//! `gatehouse exec`: one command run as a job behind the egress proxy.
//!
//! Creates the job over the API (so the server's rules apply: grants,
//! reserved variables, allow list), writes a CA bundle into a private
//! temporary directory and starts the command with the job's
//! placeholders and the proxy and CA variables of the clients agents
//! actually run ([`CLIENT_VARS`], the one table; README shows the same).
//! Each of those variables is set (or removed) whatever the command
//! inherited: an inherited `PIP_CERT` or `NO_PROXY=*` would otherwise send
//! a client around the proxy or make it distrust Gatehouse's CA.
//!
//! The bundle is the platform's trust store (the same certificates the
//! server trusts upstream under `egress.trust = platform`: `SSL_CERT_FILE`
//! / `SSL_CERT_DIR` as this process got them, else the system's store)
//! plus Gatehouse's CA, so intercepted hosts (Gatehouse's leaves) and
//! tunnelled ones (their own chains, a corporate CA included) both verify.
//! A platform store that cannot be read leaves only Gatehouse's CA in the
//! bundle, with a warning: the command then trusts less, never more.
//!
//! `NO_PROXY`/`no_proxy` are removed, not filtered: any entry, even
//! `localhost`, would let the command reach something without the
//! proxy's checks, and Gatehouse's own address need not be exempted (the
//! command talks to it only through the proxy, if at all).
//!
//! The job token appears only in the proxy URL. The command's exit code is
//! passed through; the job is deleted (its token revoked) when the command
//! ends, whatever the outcome.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use gatehouse_egress::trust::{pem_bundle, PlatformStore};
use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::ExecArgs;
use crate::remote::Remote;

/// What `exec` puts into one variable of the command's environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTo {
    /// The path of the CA bundle `exec` wrote.
    CaBundle,
    /// `http://job:<job token>@<proxy>`.
    ProxyUrl,
    /// The text `1`.
    One,
    /// Removed from the environment.
    Removed,
    /// Git's command-line configuration: `http.proxy` (the proxy URL)
    /// appended after the inherited `GIT_CONFIG_KEY_<n>`/`VALUE_<n>`
    /// entries, so it wins over `~/.gitconfig` and keeps the rest.
    GitHttpProxy,
}

impl SetTo {
    fn describe(self) -> &'static str {
        match self {
            Self::CaBundle => "the CA bundle",
            Self::ProxyUrl => "the proxy URL",
            Self::One => "`1`",
            Self::Removed => "removed",
            Self::GitHttpProxy => "`http.proxy` = the proxy URL, appended",
        }
    }
}

/// One variable of the command's environment.
#[derive(Debug)]
pub struct ClientVar {
    pub name: &'static str,
    pub set_to: SetTo,
    pub read_by: &'static str,
}

const fn var(name: &'static str, set_to: SetTo, read_by: &'static str) -> ClientVar {
    ClientVar {
        name,
        set_to,
        read_by,
    }
}

/// Every variable `exec` sets or removes, overriding what the command
/// inherited. The README's table is rendered from this one
/// ([`readme_table`]; a test compares them).
pub const CLIENT_VARS: &[ClientVar] = &[
    var("HTTPS_PROXY", SetTo::ProxyUrl, "curl, Python (requests, httpx, pip), git, Go, Deno, cargo, undici's `EnvHttpProxyAgent`, Node ≥ 22.21 with `NODE_USE_ENV_PROXY`"),
    var("https_proxy", SetTo::ProxyUrl, "the same clients (several read only the lower-case name)"),
    var("HTTP_PROXY", SetTo::ProxyUrl, "the same clients, for `http://` URLs"),
    var("http_proxy", SetTo::ProxyUrl, "curl (reads only this name for `http://`), the same clients"),
    var("ALL_PROXY", SetTo::Removed, "curl and others: a proxy for every scheme"),
    var("all_proxy", SetTo::Removed, "the same, lower case"),
    var("NO_PROXY", SetTo::Removed, "every client above: hosts reached without the proxy"),
    var("no_proxy", SetTo::Removed, "the same, lower case"),
    var("SSL_CERT_FILE", SetTo::CaBundle, "OpenSSL-based clients, Python's `ssl` (httpx, pip's truststore), Go, Ruby"),
    var("SSL_CERT_DIR", SetTo::Removed, "OpenSSL, Go: more roots (already in the bundle)"),
    var("CURL_CA_BUNDLE", SetTo::CaBundle, "curl"),
    var("REQUESTS_CA_BUNDLE", SetTo::CaBundle, "Python requests"),
    var("PIP_CERT", SetTo::CaBundle, "pip"),
    var("PIP_PROXY", SetTo::ProxyUrl, "pip (wins over `HTTPS_PROXY`)"),
    var("NODE_EXTRA_CA_CERTS", SetTo::CaBundle, "Node (fetch, https, undici)"),
    var("NODE_USE_ENV_PROXY", SetTo::One, "Node ≥ 22.21 / 24: its own fetch and https use `HTTPS_PROXY`"),
    var("GIT_SSL_CAINFO", SetTo::CaBundle, "git"),
    var("GIT_CONFIG_COUNT", SetTo::GitHttpProxy, "git: with `GIT_CONFIG_KEY_<n>`/`GIT_CONFIG_VALUE_<n>`, wins over `http.proxy` in `~/.gitconfig`"),
    var("CARGO_HTTP_CAINFO", SetTo::CaBundle, "cargo"),
    var("CARGO_HTTP_PROXY", SetTo::ProxyUrl, "cargo"),
    var("NPM_CONFIG_CAFILE", SetTo::CaBundle, "npm"),
    var("npm_config_cafile", SetTo::CaBundle, "npm (reads either case)"),
    var("npm_config_proxy", SetTo::ProxyUrl, "npm"),
    var("NPM_CONFIG_PROXY", SetTo::ProxyUrl, "npm (reads either case)"),
    var("npm_config_https_proxy", SetTo::ProxyUrl, "npm"),
    var("NPM_CONFIG_HTTPS_PROXY", SetTo::ProxyUrl, "npm (reads either case)"),
    var("npm_config_noproxy", SetTo::Removed, "npm: hosts reached without the proxy"),
    var("NPM_CONFIG_NOPROXY", SetTo::Removed, "npm (reads either case)"),
    var("AWS_CA_BUNDLE", SetTo::CaBundle, "AWS SDKs and the AWS CLI"),
    var("DENO_CERT", SetTo::CaBundle, "Deno"),
];

/// The README's table of [`CLIENT_VARS`], as markdown.
pub fn readme_table() -> String {
    let mut out = String::from("| Variable | Set to | Read by |\n|---|---|---|\n");
    for v in CLIENT_VARS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            v.name,
            v.set_to.describe(),
            v.read_by
        ));
    }
    out
}

/// The command's environment changes: `(name, Some(value))` to set,
/// `(name, None)` to remove. `inherited_git_count` is the inherited
/// `GIT_CONFIG_COUNT`, if any.
pub fn client_env(
    bundle: &str,
    proxy_url: &str,
    inherited_git_count: Option<&str>,
) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for v in CLIENT_VARS {
        match v.set_to {
            SetTo::CaBundle => out.push((v.name.to_string(), Some(bundle.to_string()))),
            SetTo::ProxyUrl => out.push((v.name.to_string(), Some(proxy_url.to_string()))),
            SetTo::One => out.push((v.name.to_string(), Some("1".into()))),
            SetTo::Removed => out.push((v.name.to_string(), None)),
            SetTo::GitHttpProxy => {
                // A count git would refuse is replaced: its entries were
                // never in effect.
                let n: usize = inherited_git_count
                    .and_then(|c| c.trim().parse().ok())
                    .filter(|n| *n < 10_000)
                    .unwrap_or(0);
                out.push((v.name.to_string(), Some((n + 1).to_string())));
                out.push((format!("GIT_CONFIG_KEY_{n}"), Some("http.proxy".into())));
                out.push((format!("GIT_CONFIG_VALUE_{n}"), Some(proxy_url.to_string())));
            }
        }
    }
    out
}

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

/// The platform's store as this process sees it, as PEM; empty (with a
/// warning) when it cannot be read.
fn platform_pem() -> String {
    let store = PlatformStore::from_env(&crate::commands::environment());
    match store.load() {
        Ok(certs) => pem_bundle(&certs),
        Err(e) => {
            eprintln!(
                "gatehouse: warning: {e}; the command's CA bundle holds only Gatehouse's CA, \
                 so hosts tunnelled without interception will not verify"
            );
            String::new()
        }
    }
}

fn write_bundle(dir: &Path, platform: &str, gatehouse_ca: &str) -> Result<std::path::PathBuf> {
    let mut bundle = String::with_capacity(platform.len() + gatehouse_ca.len() + 1);
    bundle.push_str(platform);
    if !bundle.is_empty() && !bundle.ends_with('\n') {
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
    let bundle = write_bundle(dir.path(), &platform_pem(), ca_pem)?;
    let proxy_url = format!("http://job:{job_token}@{proxy}");
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest);
    // The command inherits this process's environment; git's count is
    // read from it so that its inherited entries stay in effect.
    let git_count = std::env::var("GIT_CONFIG_COUNT").ok();
    for (name, value) in client_env(
        &bundle.display().to_string(),
        &proxy_url,
        git_count.as_deref(),
    ) {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
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
    fn client_env_sets_every_ca_and_proxy_variable_and_removes_the_bypasses() {
        let env = client_env("/b.pem", "http://job:t@p:1", None);
        let get = |name: &str| {
            env.iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{name} missing"))
                .1
                .clone()
        };
        for name in [
            "CURL_CA_BUNDLE",
            "REQUESTS_CA_BUNDLE",
            "SSL_CERT_FILE",
            "PIP_CERT",
            "NODE_EXTRA_CA_CERTS",
            "GIT_SSL_CAINFO",
            "CARGO_HTTP_CAINFO",
            "NPM_CONFIG_CAFILE",
            "AWS_CA_BUNDLE",
            "DENO_CERT",
        ] {
            assert_eq!(get(name).as_deref(), Some("/b.pem"), "{name}");
        }
        for name in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "PIP_PROXY",
            "CARGO_HTTP_PROXY",
            "npm_config_proxy",
            "npm_config_https_proxy",
        ] {
            assert_eq!(get(name).as_deref(), Some("http://job:t@p:1"), "{name}");
        }
        for name in [
            "NO_PROXY",
            "no_proxy",
            "ALL_PROXY",
            "all_proxy",
            "npm_config_noproxy",
        ] {
            assert_eq!(get(name), None, "{name} is removed");
        }
        assert_eq!(get("NODE_USE_ENV_PROXY").as_deref(), Some("1"));
        assert_eq!(get("GIT_CONFIG_COUNT").as_deref(), Some("1"));
        assert_eq!(get("GIT_CONFIG_KEY_0").as_deref(), Some("http.proxy"));
        assert_eq!(
            get("GIT_CONFIG_VALUE_0").as_deref(),
            Some("http://job:t@p:1")
        );
    }

    #[test]
    fn git_proxy_is_appended_after_inherited_git_config_entries() {
        let env = client_env("/b.pem", "http://p", Some("2"));
        let has = |n: &str, v: &str| env.iter().any(|(k, x)| k == n && x.as_deref() == Some(v));
        assert!(has("GIT_CONFIG_COUNT", "3"));
        assert!(has("GIT_CONFIG_KEY_2", "http.proxy"));
        assert!(has("GIT_CONFIG_VALUE_2", "http://p"));
        assert!(!env
            .iter()
            .any(|(k, _)| k == "GIT_CONFIG_KEY_0" || k == "GIT_CONFIG_KEY_1"));
        // A count git itself would refuse starts over.
        let env = client_env("/b.pem", "http://p", Some("lots"));
        assert!(env
            .iter()
            .any(|(k, v)| k == "GIT_CONFIG_KEY_0" && v.as_deref() == Some("http.proxy")));
    }

    #[test]
    fn every_client_variable_appears_once() {
        let mut names: Vec<&str> = CLIENT_VARS.iter().map(|v| v.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
    }

    #[test]
    fn readme_shows_the_same_table_as_the_code() {
        let readme = include_str!("../../../README.md");
        let (start, end) = (
            "<!-- exec-variables:start -->\n",
            "<!-- exec-variables:end -->",
        );
        let from = readme
            .find(start)
            .expect("README has the exec table start marker")
            + start.len();
        let to = readme[from..].find(end).expect("README has the end marker") + from;
        assert_eq!(
            &readme[from..to],
            readme_table(),
            "README's exec table differs from exec::CLIENT_VARS"
        );
    }

    #[test]
    fn the_bundle_is_the_platform_store_then_gatehouse_ca() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_bundle(dir.path(), "PLATFORM-PEM", "GATEHOUSE-CA\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            "PLATFORM-PEM\nGATEHOUSE-CA\n"
        );
        let path = write_bundle(dir.path(), "", "GATEHOUSE-CA\n").unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "GATEHOUSE-CA\n");
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
