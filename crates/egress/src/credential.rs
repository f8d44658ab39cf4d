//! The proxy credential (`Proxy-Authorization`): read, verified by the
//! one token verifier, and remembered per client connection.
//!
//! A client keeps its connection and sends the same header on every
//! request. The first time, the token is decoded and verified in full
//! ([`crate::JobDirectory::verify`]: signature, claims, revocation, live
//! job). On the connection's later requests carrying the very same bytes,
//! the lease is re-checked instead ([`crate::JobDirectory::recheck`]:
//! time window, revocation of every kind, the view's freshness, the job
//! still live): the only things that can have changed about a token
//! whose signature and claims were already read. Nothing is cached past
//! a revocation; what is saved is decoding and hashing the token again
//! (and, through the lease's [`Rechecked`] memo, applying the revocation
//! rule again while no revocation has reached the node since).
//! A different header on the same connection is verified in full, and a
//! refusal forgets the remembered credential.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use gatehouse_domain::secret::{constant_time_eq, SecretBytes};
use http::{header, HeaderMap};

use crate::directory::{Lease, Rechecked};
use crate::refusal::Refusal;
use crate::Engine;

/// A credential a client connection presented and that verified.
pub(crate) struct Credential {
    /// The `Proxy-Authorization` value as sent (it holds the token).
    presented: SecretBytes,
    lease: Arc<Lease>,
    rechecked: Rechecked,
}

/// The token in `Proxy-Authorization` (`Basic` with the token as the
/// password, as `http://job:<token>@proxy` sends it, or `Bearer`).
pub fn proxy_token(headers: &HeaderMap) -> Option<SecretBytes> {
    let value = headers.get(header::PROXY_AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return (!rest.is_empty()).then(|| SecretBytes::new(rest.as_bytes().to_vec()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = SecretBytes::new(
            base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?,
        );
        let text = decoded.expose_str()?;
        let (_, token) = text.split_once(':')?;
        return (!token.is_empty()).then(|| SecretBytes::new(token.as_bytes().to_vec()));
    }
    None
}

impl Engine {
    /// Throttle first: a source over its failure limit gets `429`.
    pub(crate) fn throttle(&self, peer: IpAddr) -> Result<(), Refusal> {
        match self.failures.blocked_for(peer, self.clock.now()) {
            Some(retry_after) => Err(Refusal::Throttled { retry_after }),
            None => Ok(()),
        }
    }

    /// The one token verifier, through the directory.
    pub(crate) async fn verify(
        &self,
        token: &SecretBytes,
        peer: IpAddr,
    ) -> Result<Arc<Lease>, Refusal> {
        let token = token.expose_str().ok_or(Refusal::ProxyAuth)?;
        let lease = self
            .directory
            .verify(token, peer)
            .await
            .map_err(Refusal::from)?;
        Ok(Arc::new(lease))
    }

    /// A lease [`Engine::verify`] gave, checked again now; `memo` is
    /// the lease's own, from its earlier re-checks.
    pub(crate) async fn recheck(
        &self,
        lease: &Lease,
        memo: &mut Rechecked,
        peer: IpAddr,
    ) -> Result<(), Refusal> {
        self.directory
            .recheck(lease, memo, peer)
            .await
            .map_err(Refusal::from)
    }

    /// Whose request this is: `memo` holds the connection's credential
    /// from its earlier requests (see the module's note).
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: IpAddr,
        memo: &mut Option<Credential>,
    ) -> Result<Arc<Lease>, Refusal> {
        let presented = headers
            .get(header::PROXY_AUTHORIZATION)
            .ok_or(Refusal::ProxyAuth)?
            .as_bytes();
        let known = memo
            .as_mut()
            .filter(|c| constant_time_eq(c.presented.expose(), presented));
        if let Some(known) = known {
            let lease = known.lease.clone();
            let rechecked = self.recheck(&lease, &mut known.rechecked, peer).await;
            return match rechecked {
                Ok(()) => Ok(lease),
                Err(refused) => {
                    *memo = None;
                    Err(refused)
                }
            };
        }
        let verified = match proxy_token(headers) {
            Some(token) => self.verify(&token, peer).await,
            None => Err(Refusal::ProxyAuth),
        };
        match verified {
            Ok(lease) => {
                *memo = Some(Credential {
                    presented: SecretBytes::new(presented.to_vec()),
                    lease: lease.clone(),
                    rechecked: Rechecked::default(),
                });
                Ok(lease)
            }
            Err(refused) => {
                *memo = None;
                Err(refused)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    fn token(headers: &HeaderMap) -> Option<String> {
        proxy_token(headers).and_then(|t| t.expose_str().map(str::to_string))
    }

    #[test]
    fn proxy_token_reads_basic_and_bearer() {
        let basic = base64::engine::general_purpose::STANDARD.encode("job:tok.en.sig");
        assert_eq!(
            token(&with(&format!("Basic {basic}"))).as_deref(),
            Some("tok.en.sig")
        );
        assert_eq!(token(&with("bearer abc")).as_deref(), Some("abc"));
        assert_eq!(token(&with("Bearer ")), None);
        let empty = base64::engine::general_purpose::STANDARD.encode("job:");
        assert_eq!(token(&with(&format!("Basic {empty}"))), None);
        assert_eq!(token(&with("Basic !!!")), None);
        assert_eq!(token(&with("Digest x")), None);
        assert_eq!(token(&HeaderMap::new()), None);
    }
}
