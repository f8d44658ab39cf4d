//! Gatehouse's own certificate authority, for TLS interception.
//!
//! Created on first start in the data directory: `egress-ca.key` (the
//! private key, mode 0600) and `egress-ca.pem` (the certificate, served at
//! `GET /v1/egress/ca.pem` and written into jobs' CA bundles). Leaf
//! certificates are minted per intercepted host, all with one leaf key
//! made at start, and kept (as ready TLS server configurations) in a
//! bounded cache, so a warm host costs no signing.
//!
//! Only the key is read back at a restart: the CA certificate used to sign
//! leaves is rebuilt from it with the same name, which yields the same
//! issuer name and key identifier as the certificate on disk, so leaves
//! chain to what clients already trust.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use thiserror::Error;

pub const CA_KEY_FILE: &str = "egress-ca.key";
pub const CA_CERT_FILE: &str = "egress-ca.pem";
const CA_NAME: &str = "Gatehouse egress CA";
/// Hosts whose TLS configuration is kept; beyond it the cache starts over.
const LEAF_CACHE: usize = 4096;

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

pub struct CertAuthority {
    ca_cert: Certificate,
    ca_key: KeyPair,
    ca_pem: String,
    leaf_key: KeyPair,
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

fn ca_params() -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "Gatehouse");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 12, 31);
    Ok(params)
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

impl CertAuthority {
    /// Loads the CA from `dir`, creating it when absent.
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        let key_path = dir.join(CA_KEY_FILE);
        let cert_path = dir.join(CA_CERT_FILE);
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| CaError::Io {
                path: p.display().to_string(),
                source,
            })
        };
        let (ca_key, ca_pem) = if key_path.exists() {
            let key = KeyPair::from_pem(&read(&key_path)?).map_err(cert_err)?;
            let pem = read(&cert_path)?;
            (key, pem)
        } else {
            let key = KeyPair::generate().map_err(cert_err)?;
            let cert = ca_params()?.self_signed(&key).map_err(cert_err)?;
            let pem = cert.pem();
            write_new(&key_path, &key.serialize_pem(), 0o600)?;
            if cert_path.exists() {
                std::fs::remove_file(&cert_path).map_err(|source| CaError::Io {
                    path: cert_path.display().to_string(),
                    source,
                })?;
            }
            write_new(&cert_path, &pem, 0o644)?;
            (key, pem)
        };
        let ca_cert = ca_params()?.self_signed(&ca_key).map_err(cert_err)?;
        Ok(Self {
            ca_cert,
            ca_key,
            ca_pem,
            leaf_key: KeyPair::generate().map_err(cert_err)?,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate, PEM: what clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    fn mint(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
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
            .signed_by(&self.leaf_key, &self.ca_cert, &self.ca_key)
            .map_err(cert_err)?;
        let chain = vec![
            leaf.der().clone(),
            CertificateDer::from(self.ca_cert.der().to_vec()),
        ];
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
    /// normal form of the `CONNECT` target's host), minted on first use.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        if let Ok(cache) = self.leaves.lock() {
            if let Some(c) = cache.get(host) {
                return Ok(c.clone());
            }
        }
        let config = self.mint(host)?;
        if let Ok(mut cache) = self.leaves.lock() {
            if cache.len() >= LEAF_CACHE {
                cache.clear();
            }
            cache.insert(host.to_string(), config.clone());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_with_a_private_key_file_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertAuthority::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let again = CertAuthority::load_or_create(dir.path()).unwrap();
        assert_eq!(again.ca_pem(), ca.ca_pem());
    }

    #[test]
    fn leaves_are_cached_per_host() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertAuthority::load_or_create(dir.path()).unwrap();
        let a = ca.server_config("api.test").unwrap();
        let b = ca.server_config("api.test").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let c = ca.server_config("127.0.0.1").unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
