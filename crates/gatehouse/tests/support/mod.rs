#![allow(dead_code)]
//! Helpers for running the real `gatehouse` binary in end-to-end tests.
//!
//! Every child runs with a cleared environment (only `PATH`, a private
//! `HOME` and what the test sets), in a fresh temporary directory as its
//! working directory, and is killed when its guard is dropped, so no
//! process outlives a test and no developer setting leaks in.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a one-shot command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to print its address and become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful shutdown may take.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(25);

static OUTPUT_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Kills (SIGKILL) and reaps the child when dropped.
pub struct ChildGuard(Child);

impl ChildGuard {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Waits for the child to exit, polling, at most `timeout`.
    pub async fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One test's private world: a temporary root used as the working
/// directory, with the data directory `<root>/data` inside it.
pub struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            root: tempfile::TempDir::new().expect("temp dir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// `gatehouse <args>` against this sandbox's data directory.
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        Cmd {
            args: args.iter().map(|a| (*a).to_string()).collect(),
            cwd: self.root.path().to_path_buf(),
            envs: vec![
                (
                    "GATEHOUSE_DATA_DIR".into(),
                    self.data_dir().display().to_string(),
                ),
                ("GATEHOUSE_LISTEN".into(), "127.0.0.1:0".into()),
                ("GATEHOUSE_EGRESS_LISTEN".into(), "127.0.0.1:0".into()),
            ],
            stdin: None,
        }
    }

    /// `gatehouse serve`, started and ready.
    pub async fn serve(&self) -> Server {
        self.cmd(&["serve"]).start_server().await
    }

    /// Copies every file of the data directory to `<root>/<name>` and
    /// returns the copy's path (the store's `-wal`/`-shm` files included).
    pub fn copy_data_dir(&self, name: &str) -> PathBuf {
        let to = self.root.path().join(name);
        std::fs::create_dir(&to).expect("create copy dir");
        for entry in std::fs::read_dir(self.data_dir()).expect("read data dir") {
            let entry = entry.expect("dir entry");
            if entry.file_type().expect("file type").is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
            }
        }
        to
    }
}

/// The outcome of a one-shot command.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl Output {
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "command failed:\n{self:?}");
        self
    }

    #[track_caller]
    pub fn assert_refused(&self) -> &Self {
        assert!(
            !self.status.success() && self.status.code().is_some(),
            "command should have exited with an error:\n{self:?}"
        );
        self
    }
}

/// A `gatehouse` invocation being prepared.
pub struct Cmd {
    args: Vec<String>,
    cwd: PathBuf,
    envs: Vec<(String, String)>,
    stdin: Option<String>,
}

impl Cmd {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.retain(|(k, _)| k != key);
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Text fed to the command's standard input (otherwise empty).
    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.into());
        self
    }

    pub fn data_dir(self, dir: &Path) -> Self {
        let dir = dir.display().to_string();
        self.env("GATEHOUSE_DATA_DIR", &dir)
    }

    fn output_files(&self) -> (PathBuf, PathBuf) {
        let n = OUTPUT_COUNTER.fetch_add(1, Ordering::SeqCst);
        let first = self.args.first().map_or("run", String::as_str);
        (
            self.cwd.join(format!("{first}-{n}.stdout")),
            self.cwd.join(format!("{first}-{n}.stderr")),
        )
    }

    fn spawn(&self, stdout: &Path, stderr: &Path) -> ChildGuard {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        command
            .args(&self.args)
            .current_dir(&self.cwd)
            .env_clear()
            .env("HOME", &self.cwd)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(std::fs::File::create(stdout).expect("stdout file"))
            .stderr(std::fs::File::create(stderr).expect("stderr file"));
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        for (k, v) in &self.envs {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn gatehouse");
        if let (Some(text), Some(mut pipe)) = (&self.stdin, child.stdin.take()) {
            use std::io::Write;
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        ChildGuard(child)
    }

    /// Runs to completion (bounded by [`COMMAND_TIMEOUT`]).
    pub async fn run(self) -> Output {
        self.run_within(COMMAND_TIMEOUT).await
    }

    /// Runs to completion; fails the test if it has not ended by `bound`.
    pub async fn run_within(self, bound: Duration) -> Output {
        let (out_path, err_path) = self.output_files();
        let started = Instant::now();
        let mut child = self.spawn(&out_path, &err_path);
        let status = child.wait_for(bound).await;
        let elapsed = started.elapsed();
        let stdout = read_text(&out_path);
        let stderr = read_text(&err_path);
        let Some(status) = status else {
            panic!(
                "gatehouse {:?} did not finish within {bound:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                self.args
            );
        };
        Output {
            status,
            stdout,
            stderr,
            elapsed,
        }
    }

    /// Starts `gatehouse serve`, waits for the address line (and the
    /// bootstrap line, if any), then for `/readyz` to answer 200.
    pub async fn start_server(self) -> Server {
        let (out_path, err_path) = self.output_files();
        let mut child = self.spawn(&out_path, &err_path);
        let deadline = Instant::now() + READY_TIMEOUT;
        let (url, bootstrap_code, stdout) = loop {
            let stdout = read_text(&out_path);
            if let Some(parsed) = parse_banner(&stdout) {
                break (parsed.0, parsed.1, stdout);
            }
            if let Some(status) = child.0.try_wait().expect("try_wait") {
                panic!(
                    "gatehouse serve exited ({status}) before printing its address\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
                    read_text(&err_path)
                );
            }
            assert!(
                Instant::now() < deadline,
                "gatehouse serve printed no address within {READY_TIMEOUT:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
                read_text(&err_path)
            );
            tokio::time::sleep(POLL).await;
        };
        let server = Server {
            child,
            url,
            bootstrap_code,
            stdout,
            stderr_path: err_path,
            http: reqwest::Client::new(),
        };
        server.wait_ready(deadline).await;
        server
    }
}

/// (base URL, bootstrap code) once the banner is complete: the address
/// line followed by either the code line or the "claimed" line.
fn parse_banner(stdout: &str) -> Option<(String, Option<String>)> {
    let complete = &stdout[..stdout.rfind('\n').map_or(0, |i| i + 1)];
    let mut url = None;
    for line in complete.lines() {
        if let Some(rest) = line.strip_prefix("Gatehouse is listening on ") {
            url = Some(rest.trim().to_string());
        } else if let Some(code) = line.strip_prefix("Bootstrap code: ") {
            return url.map(|u| (u, Some(code.trim().to_string())));
        } else if url.is_some() && line.contains("installation is claimed") {
            return url.map(|u| (u, None));
        }
    }
    None
}

pub fn read_text(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        f.read_to_string(&mut text).expect("read output");
    }
    text
}

/// A running `gatehouse serve`; SIGKILLed if dropped without [`Server::stop`].
pub struct Server {
    child: ChildGuard,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// Printed only while the installation is unclaimed.
    pub bootstrap_code: Option<String>,
    /// The banner as printed.
    pub stdout: String,
    stderr_path: PathBuf,
    pub http: reqwest::Client,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        read_text(&self.stderr_path)
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.at(path)).send().await.expect("GET")
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.at(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn claim(&self, code: &str, email: &str) -> reqwest::Response {
        self.http
            .post(self.at("/v1/bootstrap/claim"))
            .json(&serde_json::json!({ "code": code, "email": email }))
            .send()
            .await
            .expect("POST /v1/bootstrap/claim")
    }

    /// Claims with the printed code; returns the session token.
    pub async fn claim_operator(&self, email: &str) -> String {
        let code = self
            .bootstrap_code
            .clone()
            .expect("the server printed a bootstrap code");
        let resp = self.claim(&code, email).await;
        assert_eq!(resp.status(), 201, "claim failed");
        let body: serde_json::Value = resp.json().await.expect("claim JSON");
        body["token"].as_str().expect("token").to_string()
    }

    /// Registers agent `name` as the holder of `token`.
    pub async fn register_agent(&self, token: &str, name: &str) {
        let resp = self
            .http
            .post(self.at("/v1/agents"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .expect("POST /v1/agents");
        assert_eq!(resp.status(), 201, "register agent {name}");
    }

    pub async fn put_secret(&self, token: &str, name: &str, value: &str) -> reqwest::Response {
        self.http
            .put(self.at(&format!("/v1/secrets/{name}")))
            .bearer_auth(token)
            .json(&serde_json::json!({ "value": value, "allowed_hosts": ["api.github.com"] }))
            .send()
            .await
            .expect("PUT secret")
    }

    pub async fn delete_secret(&self, token: &str, name: &str) -> reqwest::Response {
        self.http
            .delete(self.at(&format!("/v1/secrets/{name}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("DELETE secret")
    }

    /// Polls `/readyz` until 200, at most until `deadline`.
    async fn wait_ready(&self, deadline: Instant) {
        loop {
            if let Ok(resp) = self.http.get(self.at("/readyz")).send().await {
                if resp.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "/readyz did not answer 200 within {READY_TIMEOUT:?}\n--- stderr ---\n{}",
                self.stderr()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGKILL, no chance to clean up; returns its log (stderr).
    pub fn kill(mut self) -> String {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        read_text(&self.stderr_path)
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// SIGTERM, then waits (bounded by [`STOP_TIMEOUT`]) for the exit.
    pub async fn stop(mut self) -> ExitStatus {
        self.terminate();
        match self.child.wait_for(STOP_TIMEOUT).await {
            Some(status) => status,
            None => panic!(
                "gatehouse serve did not exit within {STOP_TIMEOUT:?} of SIGTERM\n--- stderr ---\n{}",
                self.stderr()
            ),
        }
    }

    /// [`Server::stop`], asserting a clean exit; returns everything the
    /// server wrote to stderr (its log).
    pub async fn stop_cleanly(self) -> String {
        let stderr_path = self.stderr_path.clone();
        let status = self.stop().await;
        let log = read_text(&stderr_path);
        assert!(
            status.success(),
            "gatehouse serve exited with {status} after SIGTERM\n--- stderr ---\n{log}"
        );
        log
    }
}

/// `n` random bytes from the kernel.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .expect("open /dev/urandom")
        .read_exact(&mut buf)
        .expect("read /dev/urandom");
    buf
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard, padded base64.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A fresh, valid master key in base64.
pub fn random_master_key() -> String {
    base64(&random_bytes(32))
}

/// The permission bits of a file.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}
