//! Which certificate authorities upstream TLS trusts (`egress.trust`):
//! the platform's trust store (default), the compiled-in webpki roots, or
//! both; plus `egress.extra_root_certs` in every case.
//!
//! The platform store is what the operating system trusts: in companies
//! whose TLS is inspected, the corporate CA is there and nowhere else.
//! Where it is comes from the OpenSSL variables `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` as the configuration layer read them (passed in as
//! [`PlatformStore`], never read from the process here), else the
//! system's own store: on Linux and the BSDs the distribution's bundle
//! file (or, without one, its certificate directory), elsewhere the keychain or the Windows store (through
//! `rustls-native-certs`, which on those systems consults the same two
//! variables itself).
//!
//! A store that was asked for but yields no certificate is an error, not
//! a fallback: with `platform` or `both`, an unreadable named file or
//! directory, or a system store without a single usable certificate, stops
//! the start. Silently trusting a different set than the one configured
//! would either break every intercepted host in a network that inspects
//! TLS or widen trust where the operator had narrowed it.
//!
//! `gatehouse exec` writes the same platform certificates (plus
//! Gatehouse's CA) into the bundle its command trusts ([`pem_bundle`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;
use thiserror::Error;

/// `egress.trust`: whose roots upstream TLS trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trust {
    /// The platform's trust store (the default).
    #[default]
    Platform,
    /// The webpki roots compiled into Gatehouse (Mozilla's list).
    Webpki,
    /// Both.
    Both,
}

impl Trust {
    pub const NAMES: [&'static str; 3] = ["platform", "webpki", "both"];

    /// `platform`, `webpki` or `both` (case and surrounding spaces
    /// ignored); the error names the accepted values.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "platform" => Ok(Self::Platform),
            "webpki" => Ok(Self::Webpki),
            "both" => Ok(Self::Both),
            _ => Err(format!("{text:?} is not one of {}", Self::NAMES.join(", "))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Webpki => "webpki",
            Self::Both => "both",
        }
    }

    fn platform(self) -> bool {
        matches!(self, Self::Platform | Self::Both)
    }

    fn webpki(self) -> bool {
        matches!(self, Self::Webpki | Self::Both)
    }
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `SSL_CERT_FILE`: a PEM bundle that replaces the system's store.
pub const CERT_FILE_VAR: &str = "SSL_CERT_FILE";
/// `SSL_CERT_DIR`: directories of PEM files (`:`-separated).
pub const CERT_DIR_VAR: &str = "SSL_CERT_DIR";

/// Where the platform's store is. Both empty: the system's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformStore {
    pub cert_file: Option<PathBuf>,
    pub cert_dirs: Vec<PathBuf>,
}

/// Bundle files of the common distributions, first found wins
/// (Debian/Ubuntu/Alpine/Arch, Fedora/RHEL, openSUSE, the BSDs).
#[cfg(all(unix, not(target_os = "macos")))]
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/share/certs/ca-root-nss.crt",
];

impl PlatformStore {
    /// From the OpenSSL variables in `env` (the environment as the
    /// configuration layer read it). Empty values count as unset.
    pub fn from_env(env: &BTreeMap<String, String>) -> Self {
        let cert_file = env
            .get(CERT_FILE_VAR)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let cert_dirs = env
            .get(CERT_DIR_VAR)
            .map(|s| {
                s.split(':')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            cert_file,
            cert_dirs,
        }
    }

    fn is_default(&self) -> bool {
        self.cert_file.is_none() && self.cert_dirs.is_empty()
    }

    /// Every certificate of the store, or why there is none to trust.
    pub fn load(&self) -> Result<Vec<CertificateDer<'static>>, TrustError> {
        let certs = if self.is_default() {
            load_system()?
        } else {
            self.load_named()?
        };
        if certs.is_empty() {
            return Err(TrustError::Empty(self.to_string()));
        }
        Ok(certs)
    }

    /// `SSL_CERT_FILE` and `SSL_CERT_DIR` as named: each must be readable.
    fn load_named(&self) -> Result<Vec<CertificateDer<'static>>, TrustError> {
        let mut certs = Vec::new();
        if let Some(file) = &self.cert_file {
            certs.extend(checked(
                rustls_native_certs::load_certs_from_paths(Some(file), None),
                CERT_FILE_VAR,
                file,
            )?);
        }
        for dir in &self.cert_dirs {
            certs.extend(checked(
                rustls_native_certs::load_certs_from_paths(None, Some(dir)),
                CERT_DIR_VAR,
                dir,
            )?);
        }
        certs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
        certs.dedup();
        Ok(certs)
    }
}

fn checked(
    result: rustls_native_certs::CertificateResult,
    var: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    match result.errors.first() {
        Some(e) => Err(TrustError::Unreadable {
            store: format!("{var}={}", path.display()),
            message: e.to_string(),
        }),
        None => Ok(result.certs),
    }
}

/// Where the certificates are one file each, when no bundle exists.
#[cfg(all(unix, not(target_os = "macos")))]
const SYSTEM_DIRS: &[&str] = &["/etc/ssl/certs", "/etc/pki/tls/certs"];

#[cfg(all(unix, not(target_os = "macos")))]
fn load_system() -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let file = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file());
    let dir = SYSTEM_DIRS.iter().map(Path::new).find(|p| p.is_dir());
    let (file, dir, shown) = match (file, dir) {
        (Some(f), _) => (Some(f), None, f),
        (None, Some(d)) => (None, Some(d), d),
        (None, None) => return Ok(Vec::new()),
    };
    let result = rustls_native_certs::load_certs_from_paths(file, dir);
    match result.errors.first() {
        Some(e) if result.certs.is_empty() || file.is_some() => Err(TrustError::Unreadable {
            store: shown.display().to_string(),
            message: e.to_string(),
        }),
        _ => Ok(result.certs),
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn load_system() -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let result = rustls_native_certs::load_native_certs();
    if result.certs.is_empty() {
        if let Some(e) = result.errors.first() {
            return Err(TrustError::Unreadable {
                store: "the system's trust store".into(),
                message: e.to_string(),
            });
        }
    }
    for e in &result.errors {
        tracing::warn!("platform trust store: {e}");
    }
    Ok(result.certs)
}

impl fmt::Display for PlatformStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_default() {
            return f.write_str("the system's trust store");
        }
        let mut parts = Vec::new();
        if let Some(file) = &self.cert_file {
            parts.push(format!("{CERT_FILE_VAR}={}", file.display()));
        }
        if !self.cert_dirs.is_empty() {
            let dirs: Vec<String> = self
                .cert_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            parts.push(format!("{CERT_DIR_VAR}={}", dirs.join(":")));
        }
        f.write_str(&parts.join(", "))
    }
}

/// Everything upstream TLS trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTrust {
    pub trust: Trust,
    pub platform: PlatformStore,
    /// `egress.extra_root_certs`: PEM files, added whatever `trust` says.
    pub extra_root_certs: Vec<PathBuf>,
}

impl UpstreamTrust {
    /// The compiled-in roots and `extra` (no platform store).
    pub fn webpki(extra: Vec<PathBuf>) -> Self {
        Self {
            trust: Trust::Webpki,
            platform: PlatformStore::default(),
            extra_root_certs: extra,
        }
    }

    /// The root store this trust describes.
    pub fn roots(&self) -> Result<RootCertStore, TrustError> {
        let mut roots = RootCertStore::empty();
        if self.trust.webpki() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if self.trust.platform() {
            let certs = self.platform.load()?;
            let (added, ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(TrustError::Empty(self.platform.to_string()));
            }
            if ignored > 0 {
                tracing::warn!(
                    "platform trust store ({}): {ignored} certificates rustls cannot use were left out, {added} trusted",
                    self.platform
                );
            }
        }
        for path in &self.extra_root_certs {
            let certs = pem_certificates(path)?;
            for cert in certs {
                roots.add(cert).map_err(|e| TrustError::ExtraRoot {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            }
        }
        Ok(roots)
    }
}

/// Every certificate of a PEM file given in `egress.extra_root_certs`.
fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let bad = |message: String| TrustError::ExtraRoot {
        path: path.to_path_buf(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(certs)
}

/// `certs` as PEM text, one `CERTIFICATE` block each, in order.
pub fn pem_bundle(certs: &[CertificateDer<'_>]) -> String {
    let mut out = String::new();
    for cert in certs {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// Why upstream trust could not be set up. Every message names where
/// the certificates were looked for.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TrustError {
    #[error(
        "egress.trust: the platform trust store ({0}) has no usable certificate; \
         install the system's CA certificates, point SSL_CERT_FILE at a PEM bundle, \
         or set egress.trust = \"webpki\""
    )]
    Empty(String),
    #[error("egress.trust: the platform trust store ({store}) cannot be read: {message}")]
    Unreadable { store: String, message: String },
    #[error("egress.extra_root_certs: {}: {message}", path.display())]
    ExtraRoot { path: PathBuf, message: String },
    #[error("upstream TLS: {0}")]
    Tls(String),
}

#[cfg(test)]
mod tests;
