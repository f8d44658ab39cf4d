//! The node's revocation view, consulted by the one token verifier on
//! every request.
//!
//! Single tokens are revoked by `jti`; a subject or an owner by a
//! not-before watermark (every token of theirs issued at or before it is
//! dead), so revoking "everything of X" costs one entry, not one per token.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::token::{Claims, RevocationView, ViewUnavailable};

#[derive(Default)]
struct Snapshot {
    jtis: HashSet<String>,
    subjects: HashMap<(String, String), UnixTime>,
    owners: HashMap<String, UnixTime>,
}

#[derive(Clone, Default)]
pub struct Revocations(Arc<RwLock<Arc<Snapshot>>>);

impl Revocations {
    fn snapshot(&self) -> Arc<Snapshot> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl RevocationView for Revocations {
    fn is_revoked(&self, c: &Claims) -> Result<bool, ViewUnavailable> {
        let s = self.snapshot();
        let by_subject = s
            .subjects
            .get(&(c.owner.clone(), c.sub.clone()))
            .is_some_and(|nb| c.iat <= *nb);
        let by_owner = s.owners.get(&c.owner).is_some_and(|nb| c.iat <= *nb);
        Ok(s.jtis.contains(&c.jti) || by_subject || by_owner)
    }
}
