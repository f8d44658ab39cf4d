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
use gatehouse_domain::clock::{Clock, SystemClock};
use gatehouse_domain::crypto::{self, Purpose, SymmetricKey};
use gatehouse_domain::master_key::{encode_master_key, parse_master_key};
use gatehouse_store::{Rewrapped, Store, WrappedKey};

use crate::cli::{AuditAction, Cli, Command, ConfigArgs, KeysAction};

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve {
            config,
            print_config,
        } => serve(&config, print_config).await,
        Command::Keys { config, action } => keys(&config, action).await,
        Command::Audit { config, action } => audit(&config, action).await,
    }
}

/// The process environment, read here and nowhere else.
fn environment() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("GATEHOUSE_"))
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

fn init_logging() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
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

async fn serve(args: &ConfigArgs, print_config: bool) -> Result<ExitCode> {
    let config = load_config(args)?;
    if print_config {
        print!("{}", config.render_masked());
        return Ok(ExitCode::SUCCESS);
    }
    init_logging();
    let running =
        gatehouse_api::server::start(config, Arc::new(SystemClock), shutdown_signal()).await?;
    let url = format!("http://{}", running.addr);
    let mut out = std::io::stdout().lock();
    writeln!(out, "Gatehouse is listening on {url}")?;
    match &running.bootstrap_code {
        Some(code) => {
            writeln!(out, "Bootstrap code: {code}")?;
            writeln!(
                out,
                "Claim this installation: curl -X POST {url}/v1/bootstrap/claim -H 'Content-Type: application/json' \
                 -d '{{\"code\":\"{code}\",\"email\":\"you@example.com\"}}'"
            )?;
        }
        None => writeln!(
            out,
            "This installation is claimed; owners sign in at {url}/v1/login"
        )?,
    }
    out.flush()?;
    drop(out);
    running.wait().await?;
    Ok(ExitCode::SUCCESS)
}

async fn open_store(config: &Config) -> Result<(Arc<dyn Store>, MasterKeys)> {
    let master = startup::load_master_keys(config)?;
    let store = gatehouse_store::connect(&config.store_url()).await?;
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
    startup::ensure_data_dir(&config.data_dir)?;
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

async fn audit(args: &ConfigArgs, action: AuditAction) -> Result<ExitCode> {
    let config = load_config(args)?;
    let store = gatehouse_store::connect(&config.store_url()).await?;
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
