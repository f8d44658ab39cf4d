//! The API's side of "revocation reaches open connections" (SPEC §6):
//! [`gatehouse_egress::TokenWatch`] over the one token verifier and the
//! node's revocation view.
//!
//! - `revoked`: the view's own rule (`Revocations::covers`): the jti (a
//!   deleted job's token is revoked by jti), the subject's and the owner's
//!   watermarks, and the agent's for a job token. A view that cannot be
//!   confirmed (`revocation.max_staleness_seconds`) vouches for no token:
//!   open connections close as new requests get `503` (fail closed).
//! - `revocations`: the view's change feed, fed by this node's own
//!   revocations, PostgreSQL NOTIFY from other replicas, the 0.5 s
//!   incremental read and the full resync, so the CLI's writes and other
//!   replicas' revocations close connections here too.

use gatehouse_domain::CredentialClass;
use gatehouse_egress::{Lease, TokenWatch};

use crate::egress_bridge::ApiDirectory;
use crate::revocation::TokenRef;

/// What the revocation rule reads of a lease's token.
pub(crate) fn token_of(lease: &Lease) -> TokenRef<'_> {
    TokenRef {
        owner: &lease.job.owner,
        sub: &lease.job.subject,
        cls: CredentialClass::Job,
        jti: &lease.jti,
        iat: lease.issued_at,
    }
}

impl TokenWatch for ApiDirectory {
    fn revoked(&self, lease: &Lease) -> bool {
        match self.state() {
            Ok(st) => {
                let view = &st.auth.revocations;
                !view.is_fresh() || view.covers_token(&token_of(lease))
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
