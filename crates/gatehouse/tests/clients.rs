//! The real-client matrix: curl, Python requests, pip, git and Node's
//! fetch (undici, as a Node 20 user has it), each run by the real binary's
//! `gatehouse exec` against a local TLS upstream (`pkg.test`: an echo
//! endpoint, a package index, a git repository over dumb HTTP) whose CA
//! is only in the server's platform trust store (`SSL_CERT_FILE`, not
//! `egress.extra_root_certs`).
//!
//! Every client sends or is given the real value only through Gatehouse:
//! the upstream answers `401` unless it receives `Bearer <real value>`
//! (the placeholder swapped, or, for pip, the secret's `inject` rule), and
//! it echoes the value back (a header, a JSON body, the index page), which
//! the client must see as its placeholder. The parent environment carries
//! wrong `PIP_CERT`, `REQUESTS_CA_BUNDLE`, `NO_PROXY=*`, proxies and git
//! configuration: `exec`'s values must win.
//!
//! The clients come from `.ci/run` (a venv with requests in
//! `tests/clients/.venv`, undici via `npm ci` in `tests/clients`, git,
//! curl). Outside CI a missing client is skipped with a note; under
//! `CI=true` it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gatehouse_egress::test_support::{tls_server, upstream_ca};
use http::Response;
use http_body_util::Full;
use serde_json::json;
use support::{Sandbox, Server};

const REAL: &str = "pkgidx_real_value_3f8a2c6e1d9b";
const HOST: &str = "pkg.test";
/// Where `exec`'s inherited (wrong) proxy variables point: nothing listens.
const WRONG_PROXY: &str = "http://127.0.0.1:9";
const CLIENT_BOUND: Duration = Duration::from_secs(120);

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether `tool` can run here; under CI a missing one fails the test.
fn available(tool: &str, found: bool) -> bool {
    if !found {
        assert!(
            !under_ci(),
            "{tool} is missing under CI=true: .ci/run installs it"
        );
        eprintln!("{tool} is not installed here, so its client is not run (.ci/run installs it; under CI=true its absence fails)");
    }
    found
}

fn runs(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn venv_python() -> PathBuf {
    clients_dir().join(".venv/bin/python")
}

/// What the upstream received: (request target, Authorization).
type Seen = Arc<Mutex<Vec<(String, String)>>>;

fn text(
    status: u16,
    content_type: &str,
    auth: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-you-sent", auth)
        .body(Full::new(body.into()))
        .unwrap()
}

/// The upstream: `/echo/<client>`, the index `/simple/gh-demo/` (whose
/// link carries the received value: the client fetches what it saw),
/// `/files/<anything>/<wheel>`, and `/repo.git/...` from `repo`.
async fn upstream(
    ca: &gatehouse_egress::test_support::UpstreamCa,
    wheel: (String, Vec<u8>),
    repo: PathBuf,
) -> (u16, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let addr = tls_server(ca, &[HOST], move |parts| {
        let auth = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        s.lock()
            .unwrap()
            .push((parts.uri.to_string(), auth.clone()));
        let Some(value) = auth.strip_prefix("Bearer ").filter(|v| *v == REAL) else {
            return text(401, "text/plain", "", "unauthorized\n");
        };
        let path = parts.uri.path();
        let (wheel_name, wheel_bytes) = &wheel;
        if path.starts_with("/echo/") {
            let body = json!({ "you_sent": auth }).to_string();
            return text(200, "application/json", &auth, body);
        }
        if path == "/simple/gh-demo/" {
            let page = format!(
                "<!DOCTYPE html><html><body>\
                 <a href=\"/files/{value}/{wheel_name}\">{wheel_name}</a></body></html>\n"
            );
            return text(200, "text/html", &auth, page);
        }
        if path.starts_with("/files/") && path.ends_with(&format!("/{wheel_name}")) {
            return text(200, "application/octet-stream", &auth, wheel_bytes.clone());
        }
        if let Some(rest) = path.strip_prefix("/repo.git/") {
            if rest.split('/').all(|seg| !seg.is_empty() && seg != "..") {
                if let Ok(bytes) = std::fs::read(repo.join(rest)) {
                    let kind = if rest == "info/refs" {
                        "text/plain"
                    } else {
                        "application/octet-stream"
                    };
                    return text(200, kind, &auth, bytes);
                }
            }
        }
        text(404, "text/plain", &auth, "not found\n")
    })
    .await;
    (addr.port(), seen)
}

/// A bare repository with one commit (`README`), ready for dumb HTTP.
fn bare_repo(root: &Path) -> PathBuf {
    let work = root.join("work");
    let bare = root.join("repo.git");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("README"), "hello from the gatehouse test repo\n").unwrap();
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("git")
            .current_dir(dir)
            .env("HOME", root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args([
                "-c",
                "init.defaultBranch=main",
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@x.org",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&work, &["init", "-q"]);
    git(&work, &["add", "README"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&bare, &["update-server-info"]);
    bare
}

/// The wheel the index serves, built by `make_wheel.py`.
fn wheel(python: &Path, dir: &Path) -> (String, Vec<u8>) {
    let out = Command::new(python)
        .arg(clients_dir().join("make_wheel.py"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "make_wheel.py: {out:?}");
    let name = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let bytes = std::fs::read(dir.join(&name)).unwrap();
    (name, bytes)
}

/// `gatehouse exec` running `script` with the placeholder in `PKG_TOKEN`,
/// under a parent environment full of wrong client settings.
async fn exec(
    sandbox: &Sandbox,
    server: &Server,
    op: &str,
    trust_bundle: &str,
    script: &str,
) -> support::Output {
    let nowhere = sandbox.root().join("no-such-ca.pem").display().to_string();
    let mut cmd = sandbox
        .cmd(&[
            "exec",
            "--agent",
            "bot",
            "--grant",
            "PKG_TOKEN=pkg",
            "--",
            "sh",
            "-c",
            script,
        ])
        .env("GATEHOUSE_URL", &server.url)
        .env("GATEHOUSE_TOKEN", op)
        // This machine's platform store, as `exec` reads it.
        .env("SSL_CERT_FILE", trust_bundle);
    for var in [
        "PIP_CERT",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
        "NODE_EXTRA_CA_CERTS",
    ] {
        cmd = cmd.env(var, &nowhere);
    }
    // HTTPS proxies only: `exec` itself reaches the API (plain http://)
    // the way its environment says, as every other command does.
    for var in ["HTTPS_PROXY", "https_proxy", "PIP_PROXY"] {
        cmd = cmd.env(var, WRONG_PROXY);
    }
    cmd.env("NO_PROXY", "*")
        .env("no_proxy", "*")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.proxy")
        .env("GIT_CONFIG_VALUE_0", WRONG_PROXY)
        .run_within(CLIENT_BOUND)
        .await
}

/// The placeholder the command was given (its script prints `ph=...`).
fn placeholder(out: &support::Output) -> Option<String> {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("ph="))
        .map(str::to_string)
        .filter(|p| p.starts_with("gh_ph_"))
}

struct Matrix {
    failures: Vec<String>,
    passed: Vec<&'static str>,
}

impl Matrix {
    fn check(&mut self, client: &'static str, ok: bool, what: &str, out: &support::Output) {
        if !ok {
            self.failures.push(format!("{client}: {what}\n{out:?}"));
        }
    }

    /// The checks every client shares: it ran, it had a placeholder, the
    /// real value appears nowhere in its output, and the upstream got the
    /// real value on `path_prefix`.
    fn common(
        &mut self,
        client: &'static str,
        out: &support::Output,
        seen: &Seen,
        path_prefix: &str,
    ) -> Option<String> {
        let before = self.failures.len();
        self.check(client, out.status.success(), "the command failed", out);
        self.check(
            client,
            !out.stderr.contains("gatehouse: warning"),
            "exec could not read the platform store for its bundle",
            out,
        );
        let ph = placeholder(out);
        self.check(
            client,
            ph.is_some(),
            "no placeholder in the environment",
            out,
        );
        self.check(
            client,
            !out.stdout.contains(REAL) && !out.stderr.contains(REAL),
            "the real value reached the client",
            out,
        );
        let got = seen.lock().unwrap().iter().any(|(target, auth)| {
            target.starts_with(path_prefix) && *auth == format!("Bearer {REAL}")
        });
        self.check(
            client,
            got,
            &format!("the upstream never got the real value on {path_prefix}"),
            out,
        );
        if self.failures.len() == before {
            self.passed.push(client);
        }
        ph
    }
}

#[tokio::test]
async fn real_clients_through_exec_get_placeholders_swapped_and_echoes_guarded() {
    let dir = tempfile::TempDir::new().unwrap();
    let python = venv_python();
    let have_python = available(
        "python venv with requests (tests/clients/.venv)",
        runs(&python, &["-c", "import requests, pip"]),
    );
    let have_curl = available("curl", runs(Path::new("curl"), &["--version"]));
    let have_git = available("git", runs(Path::new("git"), &["--version"]));
    let have_node = available(
        "node with undici (tests/clients/node_modules)",
        runs(Path::new("node"), &["--version"])
            && clients_dir().join("node_modules/undici").is_dir(),
    );

    let ca = upstream_ca();
    let trust_bundle = ca.pem_file.display().to_string();
    let wheel = if have_python {
        wheel(&python, dir.path())
    } else {
        ("gh_demo-1.0-py3-none-any.whl".into(), Vec::new())
    };
    let wheel_name = wheel.0.clone();
    let repo = if have_git {
        bare_repo(dir.path())
    } else {
        dir.path().join("none")
    };
    let (port, seen) = upstream(&ca, wheel, repo).await;

    let sandbox = Sandbox::new();
    let server = sandbox
        .cmd(&["serve"])
        // The upstream's CA is in the platform store, and only there.
        .env("SSL_CERT_FILE", &trust_bundle)
        .env(
            "GATEHOUSE_EGRESS_STATIC_HOSTS",
            &format!("{HOST}=127.0.0.1"),
        )
        .env("GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS", "127.0.0.0/8")
        .env("GATEHOUSE_EGRESS_ALLOWED_PORTS", &port.to_string())
        .start_server()
        .await;
    let op = server.claim_operator("op@x.org").await;
    let r = server
        .http
        .put(server.at("/v1/secrets/pkg"))
        .bearer_auth(&op)
        .json(&json!({
            "value": REAL,
            "allowed_hosts": [HOST],
            "inject": {"header": "Authorization", "format": "Bearer {value}"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = server
        .http
        .post(server.at("/v1/agents"))
        .bearer_auth(&op)
        .json(&json!({"name": "bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let base = format!("https://{HOST}:{port}");
    let clients = clients_dir().display().to_string();
    let py = python.display().to_string();
    let mut m = Matrix {
        failures: Vec::new(),
        passed: Vec::new(),
    };

    if have_curl {
        let script = format!(
            "echo \"ph=$PKG_TOKEN\"; curl -sS --max-time 20 -D - \
             -H \"Authorization: Bearer $PKG_TOKEN\" {base}/echo/curl"
        );
        let out = exec(&sandbox, &server, &op, &trust_bundle, &script).await;
        if let Some(ph) = m.common("curl", &out, &seen, "/echo/curl") {
            let body = format!("\"you_sent\":\"Bearer {ph}\"");
            let header = format!("x-you-sent: Bearer {ph}");
            m.check(
                "curl",
                out.stdout.contains(&body),
                "the echoed body is not the placeholder",
                &out,
            );
            m.check(
                "curl",
                out.stdout.to_lowercase().contains(&header.to_lowercase()),
                "the echoed header is not the placeholder",
                &out,
            );
        }
    }

    if have_python {
        let script = format!("echo \"ph=$PKG_TOKEN\"; {py} {clients}/get.py {base}/echo/requests");
        let out = exec(&sandbox, &server, &op, &trust_bundle, &script).await;
        if let Some(ph) = m.common("requests", &out, &seen, "/echo/requests") {
            m.check(
                "requests",
                out.stdout.contains("status=200"),
                "not 200",
                &out,
            );
            m.check(
                "requests",
                out.stdout.contains(&format!("x-you-sent=Bearer {ph}")),
                "the echoed header is not the placeholder",
                &out,
            );
            m.check(
                "requests",
                out.stdout
                    .contains(&format!("\"you_sent\":\"Bearer {ph}\"")),
                "the echoed body is not the placeholder",
                &out,
            );
        }

        // pip sends no credential: the secret's `inject` rule adds it. The
        // index page echoes the value inside its link; pip must fetch the
        // link with the placeholder in it, as the echo guard rewrote it.
        let dl = dir.path().join("pip-download");
        let script = format!(
            "echo \"ph=$PKG_TOKEN\"; {py} -m pip download --no-deps --no-cache-dir \
             --disable-pip-version-check --index-url {base}/simple/ -d {} gh-demo",
            dl.display()
        );
        let out = exec(&sandbox, &server, &op, &trust_bundle, &script).await;
        if let Some(ph) = m.common("pip", &out, &seen, "/simple/gh-demo/") {
            m.check(
                "pip",
                dl.join(&wheel_name).is_file(),
                "the wheel was not saved",
                &out,
            );
            let fetched: Vec<String> = seen
                .lock()
                .unwrap()
                .iter()
                .filter(|(t, _)| t.starts_with("/files/"))
                .map(|(t, _)| t.clone())
                .collect();
            m.check(
                "pip",
                fetched
                    .iter()
                    .any(|t| t == &format!("/files/{ph}/{wheel_name}")),
                &format!("pip did not follow the guarded link with its placeholder: {fetched:?}"),
                &out,
            );
            m.check(
                "pip",
                !fetched.iter().any(|t| t.contains(REAL)),
                "pip saw the real value in the index",
                &out,
            );
        }
    }

    if have_git {
        let clone = dir.path().join("clone");
        let script = format!(
            "echo \"ph=$PKG_TOKEN\"; GIT_TRACE_CURL=1 GIT_TRACE_CURL_NO_DATA=1 \
             git -c http.extraHeader=\"Authorization: Bearer $PKG_TOKEN\" clone -q {base}/repo.git {} \
             && cat {}/README",
            clone.display(),
            clone.display()
        );
        let out = exec(&sandbox, &server, &op, &trust_bundle, &script).await;
        if let Some(ph) = m.common("git", &out, &seen, "/repo.git/") {
            m.check(
                "git",
                out.stdout.contains("hello from the gatehouse test repo"),
                "the clone has not the file",
                &out,
            );
            m.check(
                "git",
                out.stderr
                    .to_lowercase()
                    .contains(&format!("x-you-sent: bearer {}", ph.to_lowercase())),
                "the echoed header is not the placeholder",
                &out,
            );
        }
    }

    if have_node {
        let script = format!("echo \"ph=$PKG_TOKEN\"; node {clients}/fetch.mjs {base}/echo/node");
        let out = exec(&sandbox, &server, &op, &trust_bundle, &script).await;
        if let Some(ph) = m.common("node", &out, &seen, "/echo/node") {
            m.check("node", out.stdout.contains("status=200"), "not 200", &out);
            m.check(
                "node",
                out.stdout.contains(&format!("x-you-sent=Bearer {ph}")),
                "the echoed header is not the placeholder",
                &out,
            );
            m.check(
                "node",
                out.stdout
                    .contains(&format!("\"you_sent\":\"Bearer {ph}\"")),
                "the echoed body is not the placeholder",
                &out,
            );
        }
    }

    eprintln!("clients passed: {:?}", m.passed);
    assert!(m.failures.is_empty(), "{}", m.failures.join("\n\n"));
}
