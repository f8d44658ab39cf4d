//! The API's side of "revocation reaches open connections" (SPEC §6):
//! [`gatehouse_egress::TokenWatch`] over the one token verifier and the
//! node's revocation view.
//!
//! - `lease`: the token through `Authenticator::verify` (signature,
//!   claims, revocation), a job token only; the lease ends when the
//!   verifier would stop accepting it (`exp` plus the skew allowance).
//! - `revoked`: the view's own rule (`Revocations::covers`): the jti (a
//!   deleted job's token is revoked by jti), the subject's and the owner's
//!   watermarks, and the agent's for a job token. A view that cannot be
//!   confirmed (`revocation.max_staleness_seconds`) vouches for no token:
//!   open connections close as new requests get `503` (fail closed).
//! - `revocations`: the view's change feed, fed by this node's own
//!   revocations, PostgreSQL NOTIFY from other replicas, the 0.5 s
//!   incremental read and the full resync, so the CLI's writes and other
//!   replicas' revocations close connections here too.

use gatehouse_domain::token::{Claims, TokenError};
use gatehouse_domain::CredentialClass;
use gatehouse_egress::{AuthFailure, Lease, TokenWatch};

use crate::egress_bridge::{job_identity, ApiDirectory};

/// The claims the view's rule reads, rebuilt from a lease.
fn claims_of(lease: &Lease) -> Claims {
    Claims {
        iss: String::new(),
        aud: String::new(),
        sub: lease.job.subject.clone(),
        owner: lease.job.owner.clone(),
        cls: CredentialClass::Job,
        jti: lease.jti.clone(),
        iat: lease.issued_at,
        nbf: lease.issued_at,
        exp: lease.ends_at,
        scope: String::new(),
    }
}

impl TokenWatch for ApiDirectory {
    fn lease(&self, token: &str) -> Result<Lease, AuthFailure> {
        let st = self.state().map_err(|_| AuthFailure::Unavailable)?;
        let claims = st.auth.verify(token).map_err(|e| match e {
            TokenError::RevocationUnavailable => AuthFailure::Unavailable,
            _ => AuthFailure::Refused,
        })?;
        Ok(Lease {
            job: job_identity(&claims)?,
            jti: claims.jti.clone(),
            issued_at: claims.iat,
            ends_at: claims.exp.saturating_add(st.auth.policy.clock_skew),
        })
    }

    fn revoked(&self, lease: &Lease) -> bool {
        match self.state() {
            Ok(st) => {
                let view = &st.auth.revocations;
                !view.is_fresh() || view.covers(&claims_of(lease))
            }
            // The server is gone: nothing vouches for the token any more.
            Err(_) => true,
        }
    }

    fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        match self.state() {
            Ok(st) => st.auth.revocations.subscribe(),
            // A feed that never changes; the proxy's tick still runs.
            Err(_) => tokio::sync::watch::channel(0).1,
        }
    }
}
