//! TLS towards upstreams: rustls with the ring provider, trusting what
//! `egress.trust` names (the platform's store by default, see
//! [`crate::trust`]) plus `egress.extra_root_certs` (PEM files), HTTP/1.1
//! only. Interception, the relay and the outbound client all verify under
//! this one configuration. The server name checked is the target's host,
//! while the socket goes to the address that passed the egress check.
//!
//! [`connect`] is the one place a verified upstream handshake happens, and
//! the only maker of [`VerifiedTls`], the proof that placeholder swaps and
//! `inject` rules require (SPEC §6: a real value never crosses the network
//! in clear text).

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::trust::{TrustError, UpstreamTrust};
use gatehouse_domain::egress::Host;

/// Proof that a request goes out on a connection whose upstream TLS
/// Gatehouse itself verified (certificate chain and the target's name,
/// under [`upstream_config`]). Its field is private and only [`connect`]
/// makes one, after the handshake: the plain-HTTP path holds none, so it
/// cannot call [`crate::swap::apply`] and never puts a real value or an
/// `inject` header into a request.
#[derive(Debug)]
pub struct VerifiedTls(());

impl VerifiedTls {
    /// A proof without a connection, for unit tests and the fuzz target
    /// only: never compiled into the server (the feature is enabled by
    /// dev-dependencies alone).
    #[cfg(any(test, feature = "test-support"))]
    pub fn assumed_for_tests() -> Self {
        Self(())
    }
}

/// TLS over `tcp` (a socket to a checked address), the certificate
/// verified for `host` under `config`.
pub(crate) async fn connect(
    config: Arc<ClientConfig>,
    host: &Host,
    tcp: TcpStream,
) -> Result<(TlsStream<TcpStream>, VerifiedTls), String> {
    let name = server_name(host)?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok((stream, VerifiedTls(())))
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for every upstream TLS connection.
pub fn upstream_config(trust: &UpstreamTrust) -> Result<Arc<ClientConfig>, TrustError> {
    let roots = trust.roots()?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TrustError::Tls(e.to_string()))?
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
