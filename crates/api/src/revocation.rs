//! The node's revocation view, consulted by the one token verifier on
//! every request.
//!
//! Single tokens are revoked by `jti`; a subject or an owner by a
//! not-before watermark (every token of theirs issued at or before it is
//! dead), so revoking "everything of X" costs one entry, not one per token.
//!
//! Reads take no lock (papaya's lock-free maps). The view is fed by the
//! sync task (`revocation_sync.rs`) and by this node's own revocations the
//! moment they commit. If the view has not been confirmed against the
//! store for `max_staleness`, it answers "unavailable" and every token is
//! refused (503): a replica that cannot see revocations fails closed.
//!
//! Every change to the view (a new jti, a raised watermark) is announced
//! on a watch channel ([`Revocations::subscribe`]): the egress proxy
//! closes the open connections of tokens that stopped being valid the
//! moment a revocation reaches the node, whichever way it came.

use papaya::{Equivalent, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::token::jws::b64_decode;
use gatehouse_domain::token::{Claims, RevocationView, ViewUnavailable};
use gatehouse_store::{Revocation, RevocationKind};

/// (owner, subject); owner "" means "this subject under any owner".
#[derive(Clone, PartialEq, Eq)]
struct SubjectKey {
    owner: String,
    subject: String,
}

impl Hash for SubjectKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        SubjectRef {
            owner: &self.owner,
            subject: &self.subject,
        }
        .hash(state)
    }
}

/// Borrowed form, so a lookup allocates nothing.
struct SubjectRef<'a> {
    owner: &'a str,
    subject: &'a str,
}

impl Hash for SubjectRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.owner.hash(state);
        self.subject.hash(state);
    }
}

impl Equivalent<SubjectKey> for SubjectRef<'_> {
    fn equivalent(&self, key: &SubjectKey) -> bool {
        self.owner == key.owner && self.subject == key.subject
    }
}

struct Inner {
    /// Decoded 128-bit jti → the revoked token's expiry.
    jtis: HashMap<[u8; 16], UnixTime>,
    subjects: HashMap<SubjectKey, UnixTime>,
    owners: HashMap<String, UnixTime>,
    /// Highest revocation id applied, for incremental sync.
    last_id: AtomicI64,
    epoch: Instant,
    /// Milliseconds after `epoch` of the last confirmation.
    confirmed_ms: AtomicU64,
    max_staleness: Duration,
    /// Bumped whenever the view changed, after the change: a reader that
    /// took the generation before applying the rule and finds it the same
    /// later knows the rule's answer is the same too (the maps only grow
    /// between bumps, except for expired entries, which revoke nothing).
    generation: AtomicU64,
    /// The change feed, for waiters.
    changed: tokio::sync::watch::Sender<u64>,
}

#[derive(Clone)]
pub struct Revocations(Arc<Inner>);

/// What the revocation rule reads of a token.
pub struct TokenRef<'a> {
    pub owner: &'a str,
    pub sub: &'a str,
    pub cls: gatehouse_domain::CredentialClass,
    pub jti: &'a str,
    pub iat: UnixTime,
}

fn jti_key(jti: &str) -> Option<[u8; 16]> {
    b64_decode(jti).ok()?.try_into().ok()
}

impl Revocations {
    /// A view that counts as confirmed from now on until `max_staleness`
    /// passes without [`Revocations::mark_confirmed`].
    pub fn new(max_staleness: Duration) -> Self {
        Self(Arc::new(Inner {
            jtis: HashMap::new(),
            subjects: HashMap::new(),
            owners: HashMap::new(),
            last_id: AtomicI64::new(0),
            epoch: Instant::now(),
            confirmed_ms: AtomicU64::new(0),
            max_staleness,
            generation: AtomicU64::new(0),
            changed: tokio::sync::watch::channel(0).0,
        }))
    }

    /// A receiver that changes whenever a revocation changes the view.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.changed.subscribe()
    }

    pub fn apply(&self, r: &Revocation) {
        if self.merge(r) {
            self.0.generation.fetch_add(1, Ordering::SeqCst);
            self.0.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
        self.0.last_id.fetch_max(r.id, Ordering::SeqCst);
    }

    /// Merges `r` into the maps; true when the view changed (a resync
    /// re-applies what it already holds, which announces nothing).
    fn merge(&self, r: &Revocation) -> bool {
        match &r.kind {
            RevocationKind::Jti { jti } => match jti_key(jti) {
                Some(key) => self.0.jtis.pin().insert(key, r.expires_at).is_none(),
                None => false,
            },
            RevocationKind::Subject { owner, subject } => {
                let key = SubjectKey {
                    owner: owner
                        .as_ref()
                        .map(|o| o.as_str().to_string())
                        .unwrap_or_default(),
                    subject: subject.clone(),
                };
                let subjects = self.0.subjects.pin();
                let before = subjects.get(&key).copied();
                subjects.update_or_insert(key, |nb| (*nb).max(r.not_before), r.not_before);
                before.is_none_or(|nb| nb < r.not_before)
            }
            RevocationKind::Owner { owner } => {
                let owners = self.0.owners.pin();
                let before = owners.get(owner.as_str()).copied();
                owners.update_or_insert(
                    owner.as_str().to_string(),
                    |nb| (*nb).max(r.not_before),
                    r.not_before,
                );
                before.is_none_or(|nb| nb < r.not_before)
            }
        }
    }

    /// Changes after every change of the view (see the field's note):
    /// take it before [`Revocations::covers_token`] to remember its
    /// answer for as long as it stays the same.
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::SeqCst)
    }

    pub fn last_id(&self) -> i64 {
        self.0.last_id.load(Ordering::SeqCst)
    }

    /// Forgets revocations whose tokens have all expired.
    pub fn drop_expired(&self, now: UnixTime, longest_lifetime: i64) {
        self.0.jtis.pin().retain(|_, exp| *exp >= now);
        self.0
            .subjects
            .pin()
            .retain(|_, nb| *nb + longest_lifetime >= now);
        self.0
            .owners
            .pin()
            .retain(|_, nb| *nb + longest_lifetime >= now);
    }

    pub fn mark_confirmed(&self) {
        let ms = self.0.epoch.elapsed().as_millis() as u64;
        self.0.confirmed_ms.fetch_max(ms, Ordering::SeqCst);
    }

    /// How long ago the view was last confirmed against the store.
    pub fn since_confirmed(&self) -> Duration {
        let now = self.0.epoch.elapsed().as_millis() as u64;
        let confirmed = self.0.confirmed_ms.load(Ordering::SeqCst);
        Duration::from_millis(now.saturating_sub(confirmed))
    }

    pub fn is_fresh(&self) -> bool {
        let now = self.0.epoch.elapsed().as_millis() as u64;
        let confirmed = self.0.confirmed_ms.load(Ordering::SeqCst);
        now.saturating_sub(confirmed) <= self.0.max_staleness.as_millis() as u64
    }

    /// The latest watermark covering tokens of (owner, subject), if any.
    pub fn watermark_for(&self, owner: &str, subject: &str) -> Option<UnixTime> {
        let subjects = self.0.subjects.pin();
        [
            subjects.get(&SubjectRef { owner, subject }).copied(),
            subjects.get(&SubjectRef { owner: "", subject }).copied(),
            self.0.owners.pin().get(owner).copied(),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    pub fn revoked_jtis(&self) -> usize {
        self.0.jtis.len()
    }

    /// Whether these claims are revoked, freshness aside (for listings).
    /// A job token (`<agent>/<job>`), and an api token an agent's approved
    /// request produced (`<agent>/<subject>`), also die with their agent,
    /// so revoking an agent ends the whole chain.
    pub fn covers(&self, c: &Claims) -> bool {
        self.covers_token(&TokenRef {
            owner: &c.owner,
            sub: &c.sub,
            cls: c.cls,
            jti: &c.jti,
            iat: c.iat,
        })
    }

    /// [`Revocations::covers`] for a token known by the parts the rule
    /// reads (an open connection's lease), without rebuilding its claims.
    pub fn covers_token(&self, t: &TokenRef<'_>) -> bool {
        let parent = gatehouse_domain::token::watermark::parent_subject(t.cls, t.sub);
        jti_key(t.jti).is_some_and(|k| self.0.jtis.pin().contains_key(&k))
            || self
                .watermark_for(t.owner, t.sub)
                .is_some_and(|nb| t.iat <= nb)
            || parent
                .and_then(|agent| self.watermark_for(t.owner, agent))
                .is_some_and(|nb| t.iat <= nb)
    }
}

impl RevocationView for Revocations {
    fn is_revoked(&self, c: &Claims) -> Result<bool, ViewUnavailable> {
        if !self.is_fresh() {
            return Err(ViewUnavailable);
        }
        Ok(self.covers(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_domain::Email;

    fn claims(owner: &str, sub: &str, iat: i64) -> Claims {
        Claims {
            iss: "gatehouse".into(),
            aud: "gatehouse".into(),
            sub: sub.into(),
            owner: owner.into(),
            cls: gatehouse_domain::CredentialClass::Agent,
            jti: gatehouse_domain::codes::random_id(),
            iat,
            nbf: iat,
            exp: iat + 900,
            scope: String::new(),
        }
    }

    fn fresh() -> Revocations {
        let r = Revocations::new(Duration::from_secs(30));
        r.mark_confirmed();
        r
    }

    #[test]
    fn a_revoked_jti_is_refused_and_others_are_not() {
        let v = fresh();
        let c = claims("a@x.org", "bot", 100);
        v.apply(&Revocation {
            id: 1,
            kind: RevocationKind::Jti { jti: c.jti.clone() },
            not_before: 0,
            expires_at: c.exp,
        });
        assert_eq!(v.is_revoked(&c), Ok(true));
        assert_eq!(v.is_revoked(&claims("a@x.org", "bot", 100)), Ok(false));
        assert_eq!(v.last_id(), 1);
    }

    #[test]
    fn watermarks_cover_tokens_issued_at_or_before_them() {
        let v = fresh();
        let a = Email::parse("a@x.org").unwrap();
        v.apply(&Revocation {
            id: 2,
            kind: RevocationKind::Subject {
                owner: Some(a.clone()),
                subject: "bot".into(),
            },
            not_before: 100,
            expires_at: 1000,
        });
        assert_eq!(v.is_revoked(&claims("a@x.org", "bot", 100)), Ok(true));
        assert_eq!(v.is_revoked(&claims("a@x.org", "bot", 101)), Ok(false));
        assert_eq!(
            v.is_revoked(&claims("b@x.org", "bot", 50)),
            Ok(false),
            "other owner's subject untouched"
        );
        v.apply(&Revocation {
            id: 3,
            kind: RevocationKind::Owner { owner: a },
            not_before: 200,
            expires_at: 1000,
        });
        assert_eq!(v.is_revoked(&claims("a@x.org", "anyone", 150)), Ok(true));
        v.apply(&Revocation {
            id: 4,
            kind: RevocationKind::Subject {
                owner: None,
                subject: "ci".into(),
            },
            not_before: 300,
            expires_at: 1000,
        });
        assert_eq!(
            v.is_revoked(&claims("b@x.org", "ci", 250)),
            Ok(true),
            "subject under any owner"
        );
        // An older watermark never lowers a newer one.
        v.apply(&Revocation {
            id: 5,
            kind: RevocationKind::Subject {
                owner: None,
                subject: "ci".into(),
            },
            not_before: 10,
            expires_at: 1000,
        });
        assert_eq!(v.watermark_for("b@x.org", "ci"), Some(300));
    }

    #[test]
    fn the_generation_moves_with_every_change_that_can_revoke_and_only_then() {
        let v = fresh();
        let a = Email::parse("a@x.org").unwrap();
        let c = claims("a@x.org", "bot", 100);
        let subject = |not_before| Revocation {
            id: 1,
            kind: RevocationKind::Subject {
                owner: Some(a.clone()),
                subject: "bot".into(),
            },
            not_before,
            expires_at: 1000,
        };
        let jti = Revocation {
            id: 2,
            kind: RevocationKind::Jti { jti: c.jti.clone() },
            not_before: 0,
            expires_at: c.exp,
        };
        let owner = Revocation {
            id: 3,
            kind: RevocationKind::Owner { owner: a.clone() },
            not_before: 50,
            expires_at: 1000,
        };
        let mut seen = v.generation();
        for (change, moves) in [
            (subject(10), true),
            (subject(10), false), // a resync re-applies it
            (subject(5), false),  // an older watermark changes nothing
            (subject(20), true),
            (jti.clone(), true),
            (jti, false),
            (owner.clone(), true),
            (owner, false),
        ] {
            v.apply(&change);
            assert_eq!(v.generation() != seen, moves, "{:?}", change.kind);
            seen = v.generation();
        }
        // Forgetting expired entries revokes nothing: no move.
        v.drop_expired(10_000, 0);
        assert_eq!(v.generation(), seen);
    }

    #[test]
    fn an_unconfirmed_view_fails_closed() {
        let v = Revocations::new(Duration::from_millis(0));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            v.is_revoked(&claims("a@x.org", "bot", 1)),
            Err(ViewUnavailable)
        );
    }

    #[test]
    fn expired_entries_are_forgotten() {
        let v = fresh();
        let c = claims("a@x.org", "bot", 100);
        v.apply(&Revocation {
            id: 1,
            kind: RevocationKind::Jti { jti: c.jti.clone() },
            not_before: 0,
            expires_at: 500,
        });
        v.drop_expired(499, 86400);
        assert_eq!(v.revoked_jtis(), 1);
        v.drop_expired(501, 86400);
        assert_eq!(v.revoked_jtis(), 0);
    }

    #[test]
    fn new_revocations_are_announced_and_reapplied_ones_are_not() {
        let v = fresh();
        let mut rx = v.subscribe();
        let c = claims("a@x.org", "bot", 100);
        let r = Revocation {
            id: 1,
            kind: RevocationKind::Jti { jti: c.jti.clone() },
            not_before: 0,
            expires_at: c.exp,
        };
        v.apply(&r);
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        v.apply(&r);
        assert!(!rx.has_changed().unwrap(), "a resync announces nothing");
        let owner = Revocation {
            id: 2,
            kind: RevocationKind::Owner {
                owner: Email::parse("a@x.org").unwrap(),
            },
            not_before: 100,
            expires_at: 1000,
        };
        v.apply(&owner);
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        v.apply(&Revocation {
            not_before: 50,
            ..owner
        });
        assert!(
            !rx.has_changed().unwrap(),
            "a lower watermark changes nothing"
        );
    }

    #[test]
    fn tokens_under_an_agent_die_with_it_and_agents_do_not_nest() {
        let v = fresh();
        v.apply(&Revocation {
            id: 3,
            kind: RevocationKind::Subject {
                owner: Some(Email::parse("a@x.org").unwrap()),
                subject: "bot".into(),
            },
            not_before: 100,
            expires_at: 1000,
        });
        let with = |cls, sub: &str| Claims {
            cls,
            ..claims("a@x.org", sub, 100)
        };
        use gatehouse_domain::CredentialClass::{Agent, Api, Job};
        assert_eq!(v.is_revoked(&with(Job, "bot/j1")), Ok(true));
        assert_eq!(v.is_revoked(&with(Api, "bot/ci")), Ok(true));
        assert_eq!(v.is_revoked(&with(Api, "ci")), Ok(false));
        assert_eq!(v.is_revoked(&with(Api, "other/ci")), Ok(false));
        assert_eq!(v.is_revoked(&with(Agent, "bot/x")), Ok(false));
    }
}
