//! The kill-switch rule: which tokens a subject or owner revocation
//! covers.
//!
//! A revocation of "everything of X" is a not-before watermark: a token is
//! covered when its `iat` is at or below it. Clock seconds alone cannot
//! order a token and a revocation made within the same second (nor across
//! replicas whose clocks differ), so both stamps are taken from what the
//! store already holds, read under the lock that serialises its writers
//! (the audit chain head):
//!
//! - a revocation's watermark is at least the `iat` of every token already
//!   issued in its scope ([`revocation_watermark`]), so it covers them all;
//! - a new token's `iat` is above every watermark already covering it
//!   ([`issued_at`]), so it is never born revoked.
//!
//! Together: a token recorded before a revocation is covered by it, one
//! recorded after is not, whatever the second boundaries. Stamps may run
//! a little ahead of the clock when revocations and issues alternate
//! within one second; that is bounded by how often that happens.

use crate::clock::UnixTime;

/// The watermark a revocation records: its own time, raised to the latest
/// `iat` already issued in its scope.
pub fn revocation_watermark(now: UnixTime, latest_issued: Option<UnixTime>) -> UnixTime {
    latest_issued.map_or(now, |iat| iat.max(now))
}

/// The `iat` of a new token: its own time, raised past the highest
/// watermark already covering it (its owner's, its subject's, and for a
/// job its agent's).
pub fn issued_at(now: UnixTime, covering: Option<UnixTime>) -> UnixTime {
    covering.map_or(now, |w| now.max(w.saturating_add(1)))
}

/// The agent a token lives under, whose revocation covers it too: a job
/// token (`<agent>/<job>`) and an api token an agent's approved request
/// produced (`<agent>/<subject>`). Agents and sessions have no parent.
pub fn parent_subject(class: crate::CredentialClass, subject: &str) -> Option<&str> {
    match class {
        crate::CredentialClass::Job | crate::CredentialClass::Api => {
            subject.split_once('/').map(|(agent, _)| agent)
        }
        crate::CredentialClass::Agent | crate::CredentialClass::Session => None,
    }
}

/// Whether a watermark covers a token issued at `iat`.
pub fn covers(watermark: UnixTime, iat: UnixTime) -> bool {
    iat <= watermark
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_reported_sequence_is_covered() {
        // Revoke subject c at 100, mint for c in the same second, revoke
        // the owner in the same second: the owner revocation covers it.
        let subject_wm = revocation_watermark(100, None);
        let iat = issued_at(100, Some(subject_wm));
        assert_eq!(iat, 101);
        let owner_wm = revocation_watermark(100, Some(iat));
        assert!(covers(owner_wm, iat));
        let later = issued_at(100, Some(owner_wm.max(subject_wm)));
        assert!(!covers(owner_wm, later) && !covers(subject_wm, later));
    }

    /// One step of a history: a token issued (owner, subject) or a
    /// revocation of an owner or of one subject, each on a replica whose
    /// clock may be anywhere (skewed, repeated, going back).
    #[derive(Debug, Clone)]
    enum Step {
        Mint { owner: u8, subject: u8, now: i64 },
        RevokeSubject { owner: u8, subject: u8, now: i64 },
        RevokeOwner { owner: u8, now: i64 },
    }

    fn step() -> impl Strategy<Value = Step> {
        let now = 1_000i64..1_004;
        prop_oneof![
            (0u8..2, 0u8..3, now.clone()).prop_map(|(owner, subject, now)| Step::Mint {
                owner,
                subject,
                now
            }),
            (0u8..2, 0u8..3, now.clone()).prop_map(|(owner, subject, now)| {
                Step::RevokeSubject {
                    owner,
                    subject,
                    now,
                }
            }),
            (0u8..2, now).prop_map(|(owner, now)| Step::RevokeOwner { owner, now }),
        ]
    }

    struct Token {
        owner: u8,
        subject: u8,
        iat: i64,
    }

    struct Revocation {
        owner: u8,
        /// `None`: the whole owner.
        subject: Option<u8>,
        watermark: i64,
    }

    impl Revocation {
        fn in_scope(&self, t: &Token) -> bool {
            self.owner == t.owner && self.subject.is_none_or(|s| s == t.subject)
        }
    }

    proptest! {
        /// Any interleaving (the store's serial order): every token issued
        /// before a revocation in its scope is covered by it; every token
        /// issued after is covered by none issued before it.
        #[test]
        fn revocations_cover_exactly_the_tokens_issued_before_them(
            steps in proptest::collection::vec(step(), 1..40)
        ) {
            let mut tokens: Vec<(usize, Token)> = Vec::new();
            let mut revocations: Vec<(usize, Revocation)> = Vec::new();
            for (at, s) in steps.into_iter().enumerate() {
                match s {
                    Step::Mint { owner, subject, now } => {
                        let probe = Token { owner, subject, iat: 0 };
                        let covering = revocations
                            .iter()
                            .filter(|(_, r)| r.in_scope(&probe))
                            .map(|(_, r)| r.watermark)
                            .max();
                        tokens.push((at, Token { owner, subject, iat: issued_at(now, covering) }));
                    }
                    Step::RevokeSubject { owner, subject, now } => {
                        let r = Revocation { owner, subject: Some(subject), watermark: 0 };
                        let latest = tokens.iter().filter(|(_, t)| r.in_scope(t)).map(|(_, t)| t.iat).max();
                        revocations.push((at, Revocation { watermark: revocation_watermark(now, latest), ..r }));
                    }
                    Step::RevokeOwner { owner, now } => {
                        let r = Revocation { owner, subject: None, watermark: 0 };
                        let latest = tokens.iter().filter(|(_, t)| r.in_scope(t)).map(|(_, t)| t.iat).max();
                        revocations.push((at, Revocation { watermark: revocation_watermark(now, latest), ..r }));
                    }
                }
            }
            for (minted, t) in &tokens {
                for (revoked, r) in &revocations {
                    if !r.in_scope(t) {
                        continue;
                    }
                    prop_assert_eq!(
                        covers(r.watermark, t.iat),
                        minted < revoked,
                        "token #{} (iat {}) vs revocation #{} (watermark {})",
                        minted, t.iat, revoked, r.watermark
                    );
                }
            }
        }
    }
}
