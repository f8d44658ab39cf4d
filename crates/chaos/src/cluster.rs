//! The replicas: `gatehouse serve` processes, each with its own data and
//! working directory and ephemeral API and proxy ports, all with the same
//! master key, bootstrap code, configuration and `GATEHOUSE_DATABASE_URL`.
//! The harness is also the load balancer: it sends traffic only to the
//! replicas it has marked up (as a health-checking balancer would).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How a replica is started: the program and the arguments before
/// `serve` (the harness runs itself as `gatehouse-chaos gatehouse serve`,
/// or a given `gatehouse` binary).
#[derive(Clone)]
pub struct Launcher {
    pub program: PathBuf,
    pub prefix: Vec<String>,
    /// `GATEHOUSE_*` settings shared by every replica.
    pub env: Vec<(String, String)>,
    /// `gatehouse.toml`, written into each replica's working directory.
    pub config_toml: String,
}

impl Launcher {
    pub fn command(&self, args: &[&str], cwd: &Path) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.prefix)
            .args(args)
            .current_dir(cwd)
            .env_clear()
            .env("HOME", cwd)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }
}

/// What a running replica printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    pub api: String,
    pub proxy: String,
}

/// The address lines of `gatehouse serve`, once both are complete and the
/// banner has ended (the bootstrap code or the "claimed" line).
pub fn parse_banner(stdout: &str) -> Option<Banner> {
    let complete = &stdout[..stdout.rfind('\n').map_or(0, |i| i + 1)];
    let (mut api, mut proxy) = (None, None);
    for line in complete.lines() {
        if let Some(rest) = line.strip_prefix("Gatehouse is listening on ") {
            api = Some(rest.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("Egress proxy on ") {
            proxy = Some(rest.trim().trim_start_matches("http://").to_string());
        } else if line.starts_with("Bootstrap code: ") || line.contains("installation is claimed") {
            return Some(Banner {
                api: api?,
                proxy: proxy?,
            });
        }
    }
    None
}

pub struct Replica {
    pub name: String,
    dir: PathBuf,
    child: Option<Child>,
    pub banner: Option<Banner>,
    pub clock_offset: Option<i64>,
    /// Starts so far (1 after the first).
    pub starts: u32,
}

impl Replica {
    pub fn new(name: &str, root: &Path) -> Result<Self> {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("data"))?;
        Ok(Self {
            name: name.into(),
            dir,
            child: None,
            banner: None,
            clock_offset: None,
            starts: 0,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn api(&self) -> Result<&str> {
        self.banner
            .as_ref()
            .map(|b| b.api.as_str())
            .ok_or_else(|| anyhow!("{} is not running", self.name))
    }

    fn stdout_path(&self) -> PathBuf {
        self.dir.join(format!("serve-{}.stdout", self.starts))
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.dir.join(format!("serve-{}.stderr", self.starts))
    }

    /// Starts `gatehouse serve` and waits until `/readyz` answers 200.
    pub async fn start(&mut self, launcher: &Launcher, http: &reqwest::Client) -> Result<()> {
        std::fs::write(self.dir.join("gatehouse.toml"), &launcher.config_toml)?;
        self.starts += 1;
        let data = self.dir.join("data").display().to_string();
        let mut cmd = launcher.command(&["serve"], &self.dir);
        cmd.env("GATEHOUSE_DATA_DIR", &data)
            .env("GATEHOUSE_LISTEN", "127.0.0.1:0")
            .env("GATEHOUSE_EGRESS_LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.stdout_path())?)
            .stderr(std::fs::File::create(self.stderr_path())?);
        if let Some(offset) = self.clock_offset {
            cmd.env("GATEHOUSE_TEST_CLOCK_OFFSET_SECONDS", offset.to_string());
        }
        let mut child = cmd.spawn().context("spawn gatehouse serve")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let banner = loop {
            let out = std::fs::read_to_string(self.stdout_path()).unwrap_or_default();
            if let Some(b) = parse_banner(&out) {
                break b;
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} exited ({status}) before printing its addresses:\n{}",
                    self.name,
                    self.stderr_tail()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} printed no addresses within 60 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.child = Some(child);
        self.banner = Some(banner);
        self.wait_ready(http, Duration::from_secs(60)).await
    }

    /// Polls `/readyz` until 200.
    pub async fn wait_ready(&self, http: &reqwest::Client, bound: Duration) -> Result<()> {
        let url = format!("{}/readyz", self.api()?);
        let deadline = Instant::now() + bound;
        loop {
            if let Ok(r) = http.get(&url).send().await {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready within {bound:?}:\n{}",
                    self.name,
                    self.stderr_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.banner = None;
    }

    /// Whether the process is still the one started last, alive.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.stderr_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The balancer's view: which replicas take traffic, by address.
#[derive(Default)]
pub struct Balancer {
    up: RwLock<Vec<Target>>,
    next: std::sync::atomic::AtomicUsize,
}

/// One replica as the agents reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub api: String,
    pub proxy: String,
}

impl Balancer {
    pub fn set(&self, targets: Vec<Target>) {
        *self.up.write().unwrap_or_else(|e| e.into_inner()) = targets;
    }

    pub fn remove(&self, name: &str) {
        self.up
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|t| t.name != name);
    }

    pub fn add(&self, target: Target) {
        let mut up = self.up.write().unwrap_or_else(|e| e.into_inner());
        up.retain(|t| t.name != target.name);
        up.push(target);
        up.sort_by(|a, b| a.name.cmp(&b.name));
    }

    pub fn all(&self) -> Vec<Target> {
        self.up.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Round robin over the replicas up.
    pub fn pick(&self) -> Option<Target> {
        let up = self.up.read().unwrap_or_else(|e| e.into_inner());
        if up.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        up.get(n % up.len()).cloned()
    }

    /// A replica other than `name`, when there is one.
    pub fn other_than(&self, name: &str) -> Option<Target> {
        let up = self.up.read().unwrap_or_else(|e| e.into_inner());
        let others: Vec<&Target> = up.iter().filter(|t| t.name != name).collect();
        if others.is_empty() {
            return up.first().cloned();
        }
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        others.get(n % others.len()).map(|t| (*t).clone())
    }
}

pub fn target_of(replica: &Replica) -> Option<Target> {
    replica.banner.as_ref().map(|b| Target {
        name: replica.name.clone(),
        api: b.api.clone(),
        proxy: b.proxy.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_is_read_once_complete() {
        let partial = "Gatehouse is listening on http://127.0.0.1:5000\nEgress proxy on http://127.0.0.1:5001\n";
        assert_eq!(parse_banner(partial), None);
        let claimed = format!("{partial}This installation is claimed; owners sign in at x\n");
        assert_eq!(
            parse_banner(&claimed),
            Some(Banner {
                api: "http://127.0.0.1:5000".into(),
                proxy: "127.0.0.1:5001".into()
            })
        );
        let fresh = format!("WARNING: clock skewed by 20 s\n{partial}Bootstrap code: abc");
        assert_eq!(parse_banner(&fresh), None, "the code line is not complete");
        assert!(parse_banner(&format!("{fresh}\n")).is_some());
    }

    fn target(name: &str) -> Target {
        Target {
            name: name.into(),
            api: format!("http://{name}"),
            proxy: name.into(),
        }
    }

    #[test]
    fn the_balancer_rotates_over_replicas_up_and_skips_the_ones_down() {
        let lb = Balancer::default();
        assert_eq!(lb.pick(), None);
        lb.set(vec![target("a"), target("b"), target("c")]);
        let picks: Vec<String> = (0..6).filter_map(|_| lb.pick()).map(|t| t.name).collect();
        assert_eq!(picks, ["a", "b", "c", "a", "b", "c"]);
        lb.remove("b");
        assert!((0..6).filter_map(|_| lb.pick()).all(|t| t.name != "b"));
        assert!((0..6)
            .filter_map(|_| lb.other_than("a"))
            .all(|t| t.name == "c"));
        lb.add(target("b"));
        assert_eq!(lb.all().len(), 3);
        lb.set(vec![target("a")]);
        assert_eq!(lb.other_than("a").map(|t| t.name), Some("a".into()));
    }
}
