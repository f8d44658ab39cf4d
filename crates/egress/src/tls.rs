//! TLS towards upstreams: rustls with the ring provider, trusting the
//! webpki roots plus `egress.extra_root_certs` (PEM files), HTTP/1.1
//! only. The server name checked is the target's host, while the socket
//! goes to the address that passed the egress check.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::ca::CaError;
use gatehouse_domain::egress::Host;

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for every upstream TLS connection.
pub fn upstream_config(extra_roots: &[PathBuf]) -> Result<Arc<ClientConfig>, CaError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in extra_roots {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| CaError::Cert(format!("{}: {e}", path.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| CaError::Cert(format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(CaError::Cert(format!(
                "{}: no certificate in the file",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| CaError::Cert(format!("{}: {e}", path.display())))?;
        }
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| CaError::Cert(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name to verify the upstream certificate against.
pub fn server_name(host: &Host) -> Result<ServerName<'static>, String> {
    match host {
        Host::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
        Host::Name(name) => ServerName::try_from(name.as_str().to_string())
            .map_err(|_| format!("{name} is not a TLS server name")),
    }
}
