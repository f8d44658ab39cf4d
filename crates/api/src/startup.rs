//! Preparing a server: data directory, master key, store, signing keys
//! and the bootstrap code. Every failure says what is wrong and how to
//! fix it, and never prints key material.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse_domain::codes::{code_digest, human_code};
use gatehouse_domain::crypto::SymmetricKey;
use gatehouse_domain::master_key::{encode_master_key, parse_master_key};
use gatehouse_store::{BootstrapState, Store};
use thiserror::Error;

use crate::config::Config;
use crate::keys::{KeyError, MasterKeys};

pub const MASTER_KEY_FILE: &str = "master.key";
/// A rotated master key not yet promoted (see `keys rotate-master`).
pub const NEXT_MASTER_KEY_FILE: &str = "master.key.next";
pub const BOOTSTRAP_FILE: &str = "bootstrap.code";

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("GATEHOUSE_MASTER_KEY is refused: {0}")]
    MasterKeyEnv(gatehouse_domain::master_key::MasterKeyError),
    #[error("master key file {path} is refused: {reason}")]
    MasterKeyFile { path: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Upstream TLS has nothing to trust as configured (`egress.trust`,
    /// the platform store, `egress.extra_root_certs`).
    #[error(transparent)]
    Trust(#[from] gatehouse_egress::trust::TrustError),
    #[error("store: {0}")]
    Store(#[from] gatehouse_store::StoreError),
    #[error("keys: {0}")]
    Keys(#[from] KeyError),
    #[error(transparent)]
    EgressCa(#[from] crate::egress_ca::EgressCaError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub fn ensure_data_dir(dir: &Path) -> Result<(), StartError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
}

/// Writes a file readable by its owner only, replacing any older one.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), StartError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(contents).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

pub fn read_key_file(path: &Path) -> Result<SymmetricKey, StartError> {
    let refuse = |reason: String| StartError::MasterKeyFile {
        path: path.display().to_string(),
        reason,
    };
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "it is readable by others (mode {:o}); run chmod 600",
            meta.permissions().mode() & 0o777
        )));
    }
    let text = zeroize::Zeroizing::new(fs::read_to_string(path).map_err(io_err(path))?);
    parse_master_key(&text).map_err(|e| refuse(e.to_string()))
}

/// The master key from the configuration, or the key file in the data
/// directory (created, mode 0600, on first start).
pub fn load_master_keys(config: &Config) -> Result<MasterKeys, StartError> {
    let next_path = config.data_dir.join(NEXT_MASTER_KEY_FILE);
    let mut others = Vec::new();
    if next_path.exists() {
        others.push(read_key_file(&next_path)?);
    }
    let current = match &config.master_key {
        Some(text) => parse_master_key(&text.0).map_err(StartError::MasterKeyEnv)?,
        None => {
            let path = config.data_dir.join(MASTER_KEY_FILE);
            if path.exists() {
                read_key_file(&path)?
            } else {
                let key = SymmetricKey::generate();
                write_private_file(&path, encode_master_key(&key).as_bytes())?;
                tracing::info!(path = %path.display(), "created a new master key file");
                key
            }
        }
    };
    Ok(MasterKeys::new(current, others))
}

/// Refuses to start when the store holds keys wrapped by a master key
/// that is not loaded: serving would fail on every secret later.
pub async fn check_master_key_matches(
    store: &dyn Store,
    master: &MasterKeys,
) -> Result<(), StartError> {
    for wrapped in store.wrapped_keys().await? {
        let kid = wrapped.master_kid();
        if master.by_id(kid).is_none() {
            return Err(KeyError::UnknownMasterKey(kid.to_string()).into());
        }
    }
    Ok(())
}

/// While unclaimed: sets the code (preset or fresh), writes it to
/// `bootstrap.code` (0600) and returns it for printing.
pub async fn prepare_bootstrap(
    config: &Config,
    store: &dyn Store,
) -> Result<Option<String>, StartError> {
    let path: PathBuf = config.data_dir.join(BOOTSTRAP_FILE);
    if let BootstrapState::Claimed { .. } = store.bootstrap_state().await? {
        let _ = fs::remove_file(&path);
        return Ok(None);
    }
    let code = match &config.bootstrap_code {
        Some(preset) => preset.0.trim().to_string(),
        None => human_code(),
    };
    if !store.set_bootstrap_code(&code_digest(&code)).await? {
        return Ok(None);
    }
    write_private_file(&path, format!("{code}\n").as_bytes())?;
    Ok(Some(code))
}

pub type SharedStore = Arc<dyn Store>;
