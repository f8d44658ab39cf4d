//! What each command does.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use gatehouse_api::config::{Config, Sensitive};
use gatehouse_api::keys::{longest_token_lifetime, MasterKeys};
use gatehouse_api::startup::{self, NEXT_MASTER_KEY_FILE};
use gatehouse_domain::audit::{verify_chain, AuditEvent};
use gatehouse_domain::clock::{Clock, OffsetClock, SystemClock};
use gatehouse_domain::crypto::{self, Purpose, SymmetricKey};
use gatehouse_domain::master_key::{encode_master_key, parse_master_key};
use gatehouse_domain::Email;
use gatehouse_store::{RevocationKind, Rewrapped, Store, WrappedKey};

use crate::cli::{AuditAction, Cli, Command, ConfigArgs, KeysAction, TokenAction};

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve {
            config,
            print_config,
        } => serve(&config, print_config).await,
        Command::Keys { config, action } => keys(&config, action).await,
        Command::Audit { config, action } => audit(&config, action).await,
        Command::Token { config, action } => token(&config, action).await,
        Command::Approvals { remote, action } => crate::approvals::run(&remote, action).await,
        Command::Upstream { remote, action } => crate::upstream::run(&remote, action).await,
        Command::Mcp { remote, action } => crate::mcp::run(&remote, action).await,
        Command::Exec(args) => crate::exec::exec(args).await,
    }
}

/// The process environment, read here and nowhere else: the
/// `GATEHOUSE_*` keys, and where the platform's trust store is
/// (`SSL_CERT_FILE`, `SSL_CERT_DIR`).
pub(crate) fn environment() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("GATEHOUSE_")
                || k == gatehouse_egress::trust::CERT_FILE_VAR
                || k == gatehouse_egress::trust::CERT_DIR_VAR
        })
        .collect()
}

fn load_config(args: &ConfigArgs) -> Result<Config> {
    let default_file = std::path::Path::new("gatehouse.toml");
    let path = match &args.config {
        Some(p) => Some(p.clone()),
        None if default_file.exists() => Some(default_file.to_path_buf()),
        None => None,
    };
    let text = match &path {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let shown = path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut config = Config::load(text.as_deref().map(|t| (shown.as_str(), t)), &environment())?;
    if let Some(url) = &args.database_url {
        config.database_url = Some(Sensitive(zeroize::Zeroizing::new(url.clone())));
    }
    Ok(config)
}

fn init_logging() -> anyhow::Result<()> {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let format = std::env::var("GATEHOUSE_LOG_FORMAT").ok();
    let format = crate::logging::LogFormat::parse(format.as_deref()).map_err(anyhow::Error::msg)?;
    crate::logging::init(format, level);
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}

/// Every route the binary adds to the API's table: the web console's and
/// the MCP endpoints'.
pub fn extra_routes() -> Vec<gatehouse_api::router::Route> {
    let mut routes = gatehouse_console::routes();
    routes.extend(gatehouse_mcp::routes());
    routes
}

async fn serve(args: &ConfigArgs, print_config: bool) -> Result<ExitCode> {
    let config = load_config(args)?;
    if print_config {
        print!("{}", config.render_masked());
        return Ok(ExitCode::SUCCESS);
    }
    init_logging()?;
    let offset = test_clock_offset(&environment())?;
    let clock: Arc<dyn Clock> = match offset {
        Some(offset_seconds) => {
            tracing::warn!(
                offset_seconds,
                "{TEST_CLOCK_OFFSET_VAR} is set: this server's clock is skewed on purpose (fault testing only)"
            );
            Arc::new(OffsetClock { offset_seconds })
        }
        None => Arc::new(SystemClock),
    };
    // The API, the web console and the MCP endpoints, through the one
    // router builder; the gateway also runs approved `mcp.tool` calls.
    let running = gatehouse_api::server::start_full(
        config,
        clock,
        shutdown_signal(),
        gatehouse_api::server::Extensions {
            routes: extra_routes(),
            mcp: Some(Arc::new(gatehouse_mcp::gateway::GatewayCaller)),
        },
    )
    .await?;
    let url = format!("http://{}", running.addr);
    let mut out = std::io::stdout().lock();
    if let Some(offset) = offset {
        writeln!(
            out,
            "WARNING: clock skewed by {offset} s ({TEST_CLOCK_OFFSET_VAR}): for fault tests only, never in production"
        )?;
    }
    writeln!(out, "Gatehouse is listening on {url}")?;
    writeln!(out, "Egress proxy on http://{}", running.proxy_addr)?;
    match &running.bootstrap_code {
        Some(code) => {
            writeln!(out, "Bootstrap code: {code}")?;
            writeln!(
                out,
                "Open {url} in a browser and paste the bootstrap code to claim this installation."
            )?;
            writeln!(
                out,
                "Or with curl: curl -X POST {url}/v1/bootstrap/claim -H 'Content-Type: application/json' \
                 -d '{{\"code\":\"{code}\",\"email\":\"you@example.com\"}}'"
            )?;
        }
        None => writeln!(
            out,
            "This installation is claimed; owners sign in at {url}/login"
        )?,
    }
    out.flush()?;
    drop(out);
    running.wait().await?;
    Ok(ExitCode::SUCCESS)
}

/// The test-only clock skew (`gatehouse-chaos` skews one replica with it).
/// It is read from the environment only (no configuration key, so no file
/// sets it by accident), bounded by the largest clock skew tokens allow
/// (300 s), and announced on standard output and in the log at every start.
pub const TEST_CLOCK_OFFSET_VAR: &str = "GATEHOUSE_TEST_CLOCK_OFFSET_SECONDS";

fn test_clock_offset(env: &BTreeMap<String, String>) -> Result<Option<i64>> {
    let Some(text) = env.get(TEST_CLOCK_OFFSET_VAR) else {
        return Ok(None);
    };
    let offset: i64 = text
        .trim()
        .parse()
        .map_err(|_| anyhow!("{TEST_CLOCK_OFFSET_VAR} is not a whole number of seconds"))?;
    if offset == 0 || !(-300..=300).contains(&offset) {
        bail!("{TEST_CLOCK_OFFSET_VAR} must be within -300..=300 and not 0 (it was {offset})");
    }
    Ok(Some(offset))
}

/// Opens the store `serve` would use, refusing to create one: a command
/// pointed at the wrong place must say so, not report on an empty store.
async fn open_existing_store(config: &Config) -> Result<Arc<dyn Store>> {
    let url = config.store_url();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let file = path.split('?').next().unwrap_or(path);
        if !std::path::Path::new(file).exists() {
            bail!(
                "no Gatehouse store at {file}: start `gatehouse serve` once, or point GATEHOUSE_DATA_DIR, \
                 --database-url or --config at the existing store"
            );
        }
    }
    Ok(gatehouse_store::connect_with(&url, &config.database).await?)
}

async fn open_store(config: &Config) -> Result<(Arc<dyn Store>, MasterKeys)> {
    let store = open_existing_store(config).await?;
    if config.master_key.is_none() && !config.data_dir.join(startup::MASTER_KEY_FILE).exists() {
        bail!(
            "no master key: neither GATEHOUSE_MASTER_KEY nor {} exists",
            config.data_dir.join(startup::MASTER_KEY_FILE).display()
        );
    }
    let master = startup::load_master_keys(config)?;
    Ok((store, master))
}

fn cli_event(action: &str, target: &str) -> AuditEvent {
    let mut e = AuditEvent::new(action, "ok");
    e.actor = "cli".into();
    e.cls = "operator-cli".into();
    e.target = target.into();
    e
}

async fn keys(args: &ConfigArgs, action: KeysAction) -> Result<ExitCode> {
    let config = load_config(args)?;
    let (store, master) = open_store(&config).await?;
    startup::check_master_key_matches(store.as_ref(), &master).await?;
    let now = SystemClock.now();
    match action {
        KeysAction::Rotate => {
            let new = master.new_signing_key(now);
            let kid = new.kid.clone();
            store
                .rotate_signing_key(
                    &new,
                    now + longest_token_lifetime(),
                    cli_event("keys.rotate", &kid),
                    now,
                )
                .await?;
            println!("New signing key {kid} is active; running servers pick it up within 10 s.");
            println!("Earlier keys keep verifying until their last token has expired.");
        }
        KeysAction::RotateMaster => rotate_master(&config, store.as_ref(), &master, now).await?,
        KeysAction::RotateCa => {
            let overlap = config.egress.ca_overlap_seconds;
            let generation = gatehouse_api::egress_ca::rotate(
                store.as_ref(),
                &master,
                overlap,
                cli_event("keys.rotate_ca", "egress CA"),
                now,
            )
            .await?;
            println!(
                "Egress CA generation {generation} signs from now on; running servers pick it up within {} s.",
                gatehouse_api::egress_ca::RELOAD_INTERVAL.as_secs()
            );
            println!(
                "The previous CA stays in GET /v1/egress/ca.pem, and keeps verifying, for {overlap} s \
                 (egress.ca_overlap_seconds): have agents fetch the bundle again before then."
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-wraps every wrapped key under the new master key in one
/// transaction. With a key file, the new key is written beside it first
/// (`master.key.next`, which servers also load), then promoted, so a crash
/// at any step leaves every key openable.
async fn rotate_master(
    config: &Config,
    store: &dyn Store,
    master: &MasterKeys,
    now: i64,
) -> Result<()> {
    let from_env = std::env::var("GATEHOUSE_NEW_MASTER_KEY").ok();
    let key_file = config.data_dir.join(startup::MASTER_KEY_FILE);
    let next_file = config.data_dir.join(NEXT_MASTER_KEY_FILE);
    let new_key = match (&from_env, &config.master_key) {
        (Some(text), _) => parse_master_key(text).map_err(|e| anyhow!("GATEHOUSE_NEW_MASTER_KEY is refused: {e}"))?,
        (None, Some(_)) => bail!(
            "the master key comes from GATEHOUSE_MASTER_KEY: set GATEHOUSE_NEW_MASTER_KEY to the new key \
             (e.g. `openssl rand -base64 32`), run this again, then switch GATEHOUSE_MASTER_KEY to it"
        ),
        (None, None) => {
            if next_file.exists() && finish_interrupted_rotation(store, &key_file, &next_file).await? {
                return Ok(());
            }
            let key = SymmetricKey::generate();
            startup::write_private_file(&next_file, encode_master_key(&key).as_bytes())?;
            key
        }
    };
    if new_key.key_id() == master.current().key_id() {
        bail!("the new master key is the one already in use");
    }
    let mut rewrapped = Vec::new();
    for item in store.wrapped_keys().await? {
        rewrapped.push(match item {
            Rewrapped::DataKey { owner, key } => {
                let data_key = master.unwrap_data_key(&owner, &key)?;
                let wrapped = crypto::wrap_data_key(&new_key, owner.as_str(), &data_key);
                Rewrapped::DataKey {
                    owner,
                    key: WrappedKey {
                        wrapped,
                        master_kid: new_key.key_id(),
                    },
                }
            }
            Rewrapped::EgressCa {
                generation,
                cert_pem,
                sealed_key,
                master_kid,
            } => {
                let (sealed_key, master_kid) = gatehouse_api::egress_ca::reseal(
                    master,
                    &new_key,
                    generation,
                    &cert_pem,
                    &sealed_key,
                    &master_kid,
                )?;
                Rewrapped::EgressCa {
                    generation,
                    cert_pem,
                    sealed_key,
                    master_kid,
                }
            }
            Rewrapped::SigningKey {
                kid,
                sealed_private,
                master_kid,
            } => {
                let old = master.by_id(&master_kid).ok_or_else(|| {
                    anyhow!("signing key {kid} is wrapped by an unknown master key")
                })?;
                let raw = crypto::open(old, Purpose::SigningKey, &[&kid], &sealed_private)
                    .map_err(|e| anyhow!("signing key {kid}: {e}"))?;
                let sealed_private =
                    crypto::seal(&new_key, Purpose::SigningKey, &[&kid], raw.expose());
                Rewrapped::SigningKey {
                    kid,
                    sealed_private,
                    master_kid: new_key.key_id(),
                }
            }
        });
    }
    let count = rewrapped.len();
    store
        .replace_wrapped_keys(
            &rewrapped,
            cli_event("keys.rotate_master", &new_key.key_id()),
            now,
        )
        .await?;
    if from_env.is_none() {
        let old_file = config.data_dir.join("master.key.old");
        std::fs::rename(&key_file, &old_file)
            .context("keeping the old master key as master.key.old")?;
        std::fs::rename(&next_file, &key_file).context("promoting the new master key")?;
        println!("Re-wrapped {count} keys under master key {}; the old key file is master.key.old (delete it once backups no longer need it).", new_key.key_id());
    } else {
        println!(
            "Re-wrapped {count} keys under master key {}; now set GATEHOUSE_MASTER_KEY to the new key and restart.",
            new_key.key_id()
        );
    }
    Ok(())
}

async fn token(args: &ConfigArgs, action: TokenAction) -> Result<ExitCode> {
    let TokenAction::Revoke {
        jti,
        subject,
        owner,
    } = action;
    let config = load_config(args)?;
    let store = open_existing_store(&config).await?;
    let now = SystemClock.now();
    let owner = owner
        .map(|o| Email::parse(&o).map_err(|e| anyhow!("--owner: {e}")))
        .transpose()?;
    let watermark_expiry = now + longest_token_lifetime();
    let (kind, expires_at, target) = match (jti, subject, owner) {
        (Some(jti), None, None) => {
            let expiry = match store.issued_token(&jti).await? {
                Some(t) => t.exp,
                None => {
                    eprintln!(
                        "warning: no issued token with jti {jti} is known; revoking it anyway"
                    );
                    watermark_expiry
                }
            };
            let target = format!("jti {jti}");
            (RevocationKind::Jti { jti }, expiry, target)
        }
        (None, Some(subject), owner) => {
            let target = format!("subject {subject}");
            (
                RevocationKind::Subject { owner, subject },
                watermark_expiry,
                target,
            )
        }
        (None, None, Some(owner)) => {
            let target = format!("owner {owner}");
            (RevocationKind::Owner { owner }, watermark_expiry, target)
        }
        _ => bail!("give a jti, or --subject (optionally with --owner), or --owner"),
    };
    let revocation = store
        .revoke(
            kind,
            now,
            expires_at,
            cli_event("token.revoke", &target),
            now,
        )
        .await?;
    println!(
        "revoked {target} (revocation {}); running servers refuse it within a second",
        revocation.id
    );
    Ok(ExitCode::SUCCESS)
}

/// A `master.key.next` left by an interrupted rotation: when the store
/// already uses it, promote it (the rotation had committed); otherwise it
/// was never used and may be replaced. Never overwrite a key in use.
async fn finish_interrupted_rotation(
    store: &dyn Store,
    key_file: &std::path::Path,
    next_file: &std::path::Path,
) -> Result<bool> {
    let next = startup::read_key_file(next_file)?;
    let kids: Vec<String> = store
        .wrapped_keys()
        .await?
        .into_iter()
        .map(|w| w.master_kid().to_string())
        .collect();
    let under_next = kids.iter().filter(|k| **k == next.key_id()).count();
    if under_next == 0 {
        return Ok(false);
    }
    if under_next != kids.len() {
        bail!(
            "the store holds keys under both {} and {}: keep both key files and rotate with \
             GATEHOUSE_NEW_MASTER_KEY set to the content of {}",
            key_file.display(),
            next_file.display(),
            next_file.display()
        );
    }
    let old_file = key_file.with_file_name("master.key.old");
    std::fs::rename(key_file, &old_file).context("keeping the old master key as master.key.old")?;
    std::fs::rename(next_file, key_file).context("promoting the new master key")?;
    println!(
        "Finished an interrupted rotation: master key {} is now in {}; run the command again to rotate further.",
        next.key_id(),
        key_file.display()
    );
    Ok(true)
}

async fn audit(args: &ConfigArgs, action: AuditAction) -> Result<ExitCode> {
    let config = load_config(args)?;
    let store = open_existing_store(&config).await?;
    let (records, head) = store.audit_all().await?;
    match action {
        AuditAction::Verify => match verify_chain(&records, Some(&head)) {
            Ok(n) => {
                println!("audit chain intact: {n} records, head {}", head.hash);
                Ok(ExitCode::SUCCESS)
            }
            Err(b) => {
                println!("audit chain BROKEN at record {}: {}", b.seq, b.reason);
                Ok(ExitCode::from(2))
            }
        },
        AuditAction::Export => {
            let mut out = std::io::stdout().lock();
            for r in &records {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(TEST_CLOCK_OFFSET_VAR.to_string(), value.to_string())])
    }

    #[test]
    fn the_test_clock_offset_is_absent_unless_set() {
        assert_eq!(test_clock_offset(&BTreeMap::new()).ok(), Some(None));
    }

    #[test]
    fn the_test_clock_offset_takes_seconds_either_way_within_the_skew_limit() {
        assert_eq!(test_clock_offset(&env("20")).ok(), Some(Some(20)));
        assert_eq!(test_clock_offset(&env(" -20 ")).ok(), Some(Some(-20)));
        assert_eq!(test_clock_offset(&env("300")).ok(), Some(Some(300)));
    }

    #[test]
    fn the_test_clock_offset_refuses_zero_garbage_and_large_skews() {
        for bad in ["0", "301", "-301", "20s", ""] {
            let err = test_clock_offset(&env(bad)).err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains(TEST_CLOCK_OFFSET_VAR)),
                "{bad:?}: {err:?}"
            );
        }
    }
}
