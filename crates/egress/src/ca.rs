//! Gatehouse's certificate authority, for TLS interception.
//!
//! One CA per installation: the API keeps it in the store, sealed under the
//! master key, and hands this module a [`CaView`] (the signing generation's
//! key and certificate, the certificate to present after a leaf, and the
//! bundle clients must trust). Every replica signs with the same key, so a
//! client that trusts `GET /v1/egress/ca.pem` from one replica trusts the
//! leaves of all of them. [`CertAuthority::install`] swaps in a rotated CA
//! while the proxy runs.
//!
//! Rotation without breaking clients: a new generation's certificate is
//! also signed by the previous CA (the "cross" certificate). While the
//! previous CA is still trusted, leaves are presented with the cross
//! certificate after them, so a client holding only the old bundle builds
//! leaf → cross → old CA, and a client holding the new bundle stops at the
//! new CA (its issuer). CAs made here allow one intermediate below them
//! (path length 1) for exactly that; a CA made before this scheme (path
//! length 0) is honoured by rustls/webpki clients, which ignore a trust
//! anchor's path length, but OpenSSL-based clients need the new bundle
//! right after its first rotation.
//!
//! Leaf certificates are minted per intercepted host, all with one leaf
//! key made at start, and kept (as ready TLS server configurations) in a
//! cache bounded by [`LEAF_CACHE`] entries (least recently used evicted)
//! that belongs to one CA generation: installing another CA drops it.
//!
//! The issuer used to sign is rebuilt from the key with the generation's
//! name ([`ca_name`]), which yields the same issuer name and key identifier
//! as the stored certificate, so leaves chain to what clients trust.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use gatehouse_domain::lru::Lru;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use thiserror::Error;
use zeroize::Zeroizing;

/// Files of a proxy run on its own ([`CertAuthority::load_or_create`]), and
/// of installations from before the CA moved into the store (imported
/// once by the API, then removed).
pub const CA_KEY_FILE: &str = "egress-ca.key";
pub const CA_CERT_FILE: &str = "egress-ca.pem";
/// Hosts whose TLS configuration is kept per replica; beyond it the least
/// recently used host is minted again on its next use.
pub const LEAF_CACHE: usize = 4096;

#[derive(Debug, Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("certificate authority: {0}")]
    Cert(String),
}

fn cert_err(e: impl std::fmt::Display) -> CaError {
    CaError::Cert(e.to_string())
}

/// The common name of a generation's CA: generation 1 keeps the name CAs
/// always had (so imported ones match), later ones are numbered, so a
/// client's bundle never holds two CAs of one name.
pub fn ca_name(generation: i64) -> String {
    if generation <= 1 {
        "Gatehouse egress CA".to_string()
    } else {
        format!("Gatehouse egress CA {generation}")
    }
}

fn ca_params(generation: i64, path_len: u8) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, ca_name(generation));
    dn.push(DnType::OrganizationName, "Gatehouse");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 12, 31);
    Ok(params)
}

/// A new CA: its private key (PKCS#8 PEM, to be sealed at once) and its
/// self-signed certificate.
pub struct NewCa {
    pub generation: i64,
    pub key_pem: Zeroizing<String>,
    pub cert_pem: String,
}

impl std::fmt::Debug for NewCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCa")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Makes the CA of `generation` (path length 1: it may sign the next
/// generation's cross certificate).
pub fn new_ca(generation: i64) -> Result<NewCa, CaError> {
    let key = KeyPair::generate().map_err(cert_err)?;
    let cert = ca_params(generation, 1)?
        .self_signed(&key)
        .map_err(cert_err)?;
    Ok(NewCa {
        generation,
        key_pem: Zeroizing::new(key.serialize_pem()),
        cert_pem: cert.pem(),
    })
}

/// `next`'s certificate signed by `previous`: presented after leaves while
/// clients may still trust only `previous`.
pub fn cross_sign(
    next: &NewCa,
    previous_generation: i64,
    previous_key_pem: &str,
) -> Result<String, CaError> {
    let previous_key = KeyPair::from_pem(previous_key_pem).map_err(cert_err)?;
    let previous = ca_params(previous_generation, 1)?
        .self_signed(&previous_key)
        .map_err(cert_err)?;
    let next_key = KeyPair::from_pem(&next.key_pem).map_err(cert_err)?;
    let cert = ca_params(next.generation, 0)?
        .signed_by(&next_key, &previous, &previous_key)
        .map_err(cert_err)?;
    Ok(cert.pem())
}

/// What a replica serves and signs with, as the API reads it from the store.
pub struct CaView {
    /// The signing generation.
    pub generation: i64,
    pub key_pem: Zeroizing<String>,
    pub cert_pem: String,
    /// Presented after each leaf instead of `cert_pem`: the signer's cross
    /// certificate, while the CA before it is still trusted.
    pub cross_pem: Option<String>,
    /// Every CA clients should trust now, PEM, newest first.
    pub bundle_pem: String,
}

impl std::fmt::Debug for CaView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaView")
            .field("generation", &self.generation)
            .field("cross", &self.cross_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// One installed CA generation and the leaves it signed.
struct Signer {
    generation: i64,
    ca_cert: Certificate,
    ca_key: KeyPair,
    /// What follows a leaf in the presented chain.
    presented: CertificateDer<'static>,
    has_cross: bool,
    bundle_pem: String,
    leaves: Mutex<Lru<String, Arc<ServerConfig>>>,
}

impl Signer {
    fn build(view: &CaView, leaf_cache: usize) -> Result<Self, CaError> {
        let ca_key = KeyPair::from_pem(&view.key_pem).map_err(cert_err)?;
        let ca_cert = ca_params(view.generation, 1)?
            .self_signed(&ca_key)
            .map_err(cert_err)?;
        let presented_pem = view.cross_pem.as_deref().unwrap_or(&view.cert_pem);
        let presented = CertificateDer::from_pem_slice(presented_pem.as_bytes()).map_err(|e| {
            cert_err(format!(
                "CA certificate of generation {}: {e}",
                view.generation
            ))
        })?;
        Ok(Self {
            generation: view.generation,
            ca_cert,
            ca_key,
            presented,
            has_cross: view.cross_pem.is_some(),
            bundle_pem: view.bundle_pem.clone(),
            leaves: Mutex::new(Lru::new(leaf_cache)),
        })
    }

    fn same_as(&self, view: &CaView) -> bool {
        self.generation == view.generation
            && self.has_cross == view.cross_pem.is_some()
            && self.bundle_pem == view.bundle_pem
    }
}

pub struct CertAuthority {
    leaf_key: KeyPair,
    /// Leaves kept per generation (see [`LEAF_CACHE`]).
    leaf_cache: usize,
    signer: RwLock<Arc<Signer>>,
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), CaError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| CaError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Reads the CA files of a data directory, if there is a key.
pub fn read_files(dir: &Path) -> Result<Option<(Zeroizing<String>, String)>, CaError> {
    let key_path = dir.join(CA_KEY_FILE);
    let cert_path = dir.join(CA_CERT_FILE);
    if !key_path.exists() {
        return Ok(None);
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|source| CaError::Io {
            path: p.display().to_string(),
            source,
        })
    };
    let key = Zeroizing::new(read(&key_path)?);
    KeyPair::from_pem(&key).map_err(|e| cert_err(format!("{}: {e}", key_path.display())))?;
    Ok(Some((key, read(&cert_path)?)))
}

impl CertAuthority {
    /// A CA installed from `view`.
    pub fn from_view(view: &CaView) -> Result<Self, CaError> {
        Self::with_leaf_cache(view, LEAF_CACHE)
    }

    /// [`CertAuthority::from_view`], keeping at most `leaf_cache` leaves.
    pub fn with_leaf_cache(view: &CaView, leaf_cache: usize) -> Result<Self, CaError> {
        Ok(Self {
            leaf_key: KeyPair::generate().map_err(cert_err)?,
            leaf_cache,
            signer: RwLock::new(Arc::new(Signer::build(view, leaf_cache)?)),
        })
    }

    /// For a proxy run on its own (tests): the CA in `dir`, created there
    /// when absent (`egress-ca.key` mode 0600, `egress-ca.pem`). A server
    /// keeps its CA in the store instead.
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        let (key_pem, cert_pem) = match read_files(dir)? {
            Some(found) => found,
            None => {
                let ca = new_ca(1)?;
                let cert_path = dir.join(CA_CERT_FILE);
                write_new(&dir.join(CA_KEY_FILE), &ca.key_pem, 0o600)?;
                if cert_path.exists() {
                    std::fs::remove_file(&cert_path).map_err(|source| CaError::Io {
                        path: cert_path.display().to_string(),
                        source,
                    })?;
                }
                write_new(&cert_path, &ca.cert_pem, 0o644)?;
                (ca.key_pem, ca.cert_pem)
            }
        };
        Self::from_view(&CaView {
            generation: 1,
            key_pem,
            bundle_pem: cert_pem.clone(),
            cert_pem,
            cross_pem: None,
        })
    }

    fn current(&self) -> Arc<Signer> {
        match self.signer.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Installs `view` unless it is what is installed already; a new
    /// signer starts with an empty leaf cache. Returns whether it changed.
    pub fn install(&self, view: &CaView) -> Result<bool, CaError> {
        if self.current().same_as(view) {
            return Ok(false);
        }
        let next = Arc::new(Signer::build(view, self.leaf_cache)?);
        match self.signer.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(true)
    }

    /// The generation signing leaves now.
    pub fn generation(&self) -> i64 {
        self.current().generation
    }

    /// The CA certificates clients must trust, PEM, newest first.
    pub fn ca_pem(&self) -> String {
        self.current().bundle_pem.clone()
    }

    /// Leaves held in the current generation's cache.
    pub fn cached_leaves(&self) -> usize {
        self.current().leaves.lock().map_or(0, |c| c.len())
    }

    fn mint(&self, signer: &Signer, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        let san = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.to_string().try_into().map_err(cert_err)?),
        };
        params.subject_alt_names = vec![san];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let leaf = params
            .signed_by(&self.leaf_key, &signer.ca_cert, &signer.ca_key)
            .map_err(cert_err)?;
        let chain = vec![leaf.der().clone(), signer.presented.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(cert_err)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(cert_err)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The TLS server configuration presenting a leaf for `host` (the
    /// normal form of the `CONNECT` target's host), minted on first use
    /// by the current CA generation.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let signer = self.current();
        if let Ok(mut cache) = signer.leaves.lock() {
            if let Some(c) = cache.get_mut(host) {
                return Ok(c.clone());
            }
        }
        let config = self.mint(&signer, host)?;
        if let Ok(mut cache) = signer.leaves.lock() {
            return Ok(cache
                .get_or_insert_with(host.to_string(), || config)
                .clone());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
