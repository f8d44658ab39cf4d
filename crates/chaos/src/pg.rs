//! A private PostgreSQL for one run: `initdb` in a temporary directory (as
//! the `postgres` user when the harness runs as root, since PostgreSQL
//! refuses to run as root), on a free loopback port, with trust
//! authentication on loopback only. The harness stops it (`pg_ctl stop -m
//! immediate`, a crash) and starts it again as a fault. The system
//! cluster is never touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// PostgreSQL's `max_connections` for the run (its default): three
/// replicas' pools and listeners and the harness fit well inside it, so
/// exhausting it is a deliberate fault.
pub const MAX_CONNECTIONS: u32 = 100;

pub struct PrivatePg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
pub fn find_bin_dir(root: &Path) -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let major: u32 = name.split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl PrivatePg {
    pub fn start() -> Result<Self> {
        let bin = find_bin_dir(Path::new("/usr/lib/postgresql")).context(
            "no PostgreSQL server binaries under /usr/lib/postgresql/<version>/bin \
             (apt-get install postgresql)",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("gatehouse-chaos-pg")
            .tempdir()?;
        let as_postgres = is_root();
        if as_postgres {
            // The cluster directory belongs to the user that runs it.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()?;
            if !status.success() {
                bail!("chown of {} to postgres failed", dir.path().display());
            }
        }
        let pg = Self {
            bin,
            dir,
            port: free_port()?,
            as_postgres,
        };
        let data = pg.data_dir();
        let data = data.display().to_string();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        pg.pg_ctl_start()?;
        Ok(pg)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<()> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", exe.display()))?;
        if !out.status.success() {
            bail!(
                "{tool} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Starts the server and waits until it accepts connections. The
    /// faults crash the server process, never the machine, so `fsync` is
    /// off (the operating system keeps what was written); commits stay
    /// synchronous, so an acknowledged commit survives the crash.
    pub fn pg_ctl_start(&self) -> Result<()> {
        let data = self.data_dir().display().to_string();
        let log = self.dir.path().join("postgres.log").display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}' \
             -c max_connections={MAX_CONNECTIONS} -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                bail!("PostgreSQL did not accept connections within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// A crash: no checkpoint, every connection dropped.
    pub fn stop_immediate(&self) -> Result<()> {
        let data = self.data_dir().display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
    }

    /// The URL of a fresh database (created here) in this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn create_database(&self, db: &str) -> Result<()> {
        let port = self.port.to_string();
        let host = "127.0.0.1";
        self.run("createdb", &["-h", host, "-p", &port, "-U", "postgres", db])
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.stop_immediate();
    }
}

/// Opens connections until PostgreSQL refuses one (`too many clients`) or
/// `limit` are open; the caller holds them for as long as the fault lasts.
pub async fn exhaust(url: &str, limit: usize) -> Vec<sqlx::PgConnection> {
    use sqlx::Connection;
    let mut held = Vec::new();
    while held.len() < limit {
        match tokio::time::timeout(Duration::from_secs(3), sqlx::PgConnection::connect(url)).await {
            Ok(Ok(c)) => held.push(c),
            _ => break,
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_installed_server_version_is_chosen() {
        let root = tempfile::tempdir().unwrap();
        for (v, with_initdb) in [("13", true), ("16", true), ("17", false), ("9.6", true)] {
            let bin = root.path().join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            if with_initdb {
                std::fs::write(bin.join("initdb"), "").unwrap();
            }
        }
        std::fs::create_dir_all(root.path().join("common")).unwrap();
        assert_eq!(
            find_bin_dir(root.path()),
            Some(root.path().join("16").join("bin"))
        );
        assert_eq!(find_bin_dir(&root.path().join("absent")), None);
    }
}
