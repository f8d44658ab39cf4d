//! The audit record and its hash chain.
//!
//! Each record's hash is SHA-256 over a canonical, length-prefixed encoding
//! of every field plus the previous record's hash. Editing, deleting,
//! inserting or reordering any record breaks the chain at that record, and
//! [`verify_chain`] names the first one that no longer fits.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::UnixTime;
use crate::secret::constant_time_eq;

/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an audit write says happened, before it is placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub actor: String,
    pub cls: String,
    /// The owner the act concerns; empty only for acts before any owner
    /// exists (none today) — tenancy filters on this field.
    pub owner: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub request_id: String,
}

impl AuditEvent {
    pub fn new(action: &str, outcome: &str) -> Self {
        Self {
            actor: String::new(),
            cls: String::new(),
            owner: String::new(),
            action: action.into(),
            target: String::new(),
            outcome: outcome.into(),
            request_id: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub ts: UnixTime,
    pub actor: String,
    pub cls: String,
    pub owner: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// Places an event in the chain after `prev`, computing its hash.
    pub fn chain(event: AuditEvent, seq: i64, ts: UnixTime, prev_hash: &str) -> Self {
        let mut r = Self {
            seq,
            ts,
            actor: event.actor,
            cls: event.cls,
            owner: event.owner,
            action: event.action,
            target: event.target,
            outcome: event.outcome,
            request_id: event.request_id,
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        r
    }

    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"gatehouse/v1/audit-record");
        let seq = self.seq.to_string();
        let ts = self.ts.to_string();
        for field in [
            seq.as_str(),
            ts.as_str(),
            &self.actor,
            &self.cls,
            &self.owner,
            &self.action,
            &self.target,
            &self.outcome,
            &self.request_id,
            &self.prev_hash,
        ] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Where and why a chain stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

/// The head the store believes in (`seq`, `hash` of the last record), so
/// that deleting records from the end is detected too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// Walks records in storage order. Returns the number of records checked.
pub fn verify_chain<'a, I>(records: I, head: Option<&ChainHead>) -> Result<u64, ChainBreak>
where
    I: IntoIterator<Item = &'a AuditRecord>,
{
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut count = 0u64;
    for r in records {
        if r.seq != expected_seq {
            return Err(ChainBreak {
                seq: r.seq,
                reason: format!(
                    "expected record {expected_seq} here (a record was deleted, inserted or moved)"
                ),
            });
        }
        if !constant_time_eq(r.prev_hash.as_bytes(), prev_hash.as_bytes()) {
            return Err(ChainBreak {
                seq: r.seq,
                reason: "prev_hash does not match the previous record".into(),
            });
        }
        if !constant_time_eq(r.compute_hash().as_bytes(), r.hash.as_bytes()) {
            return Err(ChainBreak {
                seq: r.seq,
                reason: "hash does not match the record's content (edited)".into(),
            });
        }
        prev_hash = r.hash.clone();
        expected_seq += 1;
        count += 1;
    }
    if let Some(head) = head {
        let last = expected_seq - 1;
        if head.seq != last || !constant_time_eq(head.hash.as_bytes(), prev_hash.as_bytes()) {
            return Err(ChainBreak {
                seq: last + 1,
                reason: format!(
                    "the chain head says record {} is last, but the log ends at {last} (records removed from the end)",
                    head.seq
                ),
            });
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_of(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for seq in 1..=n {
            let prev = out
                .last()
                .map_or(GENESIS_HASH.to_string(), |r| r.hash.clone());
            let mut e = AuditEvent::new("secret.write", "ok");
            e.owner = "alice@x.org".into();
            e.target = format!("S{seq}");
            out.push(AuditRecord::chain(e, seq, 1000 + seq, &prev));
        }
        out
    }

    fn head(records: &[AuditRecord]) -> ChainHead {
        let last = records.last().unwrap();
        ChainHead {
            seq: last.seq,
            hash: last.hash.clone(),
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain_of(5);
        assert_eq!(verify_chain(&c, Some(&head(&c))), Ok(5));
        assert_eq!(
            verify_chain(
                &[],
                Some(&ChainHead {
                    seq: 0,
                    hash: GENESIS_HASH.into()
                })
            ),
            Ok(0)
        );
    }

    #[test]
    fn an_edited_record_is_named() {
        let mut c = chain_of(5);
        let h = head(&c);
        c[2].outcome = "denied".into();
        assert_eq!(verify_chain(&c, Some(&h)).unwrap_err().seq, 3);
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_next_record() {
        let mut c = chain_of(5);
        let h = head(&c);
        c[1].target = "other".into();
        c[1].hash = c[1].compute_hash();
        assert_eq!(verify_chain(&c, Some(&h)).unwrap_err().seq, 3);
    }

    #[test]
    fn a_deleted_record_is_named() {
        let mut c = chain_of(5);
        let h = head(&c);
        c.remove(1);
        assert_eq!(verify_chain(&c, Some(&h)).unwrap_err().seq, 3);
    }

    #[test]
    fn reordered_records_are_named() {
        let mut c = chain_of(5);
        let h = head(&c);
        // Swap the content of 2 and 3 while keeping seq in order.
        let (a, b) = (c[1].clone(), c[2].clone());
        c[1] = AuditRecord { seq: 2, ..b };
        c[2] = AuditRecord { seq: 3, ..a };
        assert_eq!(verify_chain(&c, Some(&h)).unwrap_err().seq, 2);
    }

    #[test]
    fn a_truncated_tail_is_detected_through_the_head() {
        let mut c = chain_of(5);
        let h = head(&c);
        c.truncate(3);
        let err = verify_chain(&c, Some(&h)).unwrap_err();
        assert_eq!(err.seq, 4);
        assert!(err.reason.contains("removed from the end"));
    }

    #[test]
    fn fields_cannot_slide_into_each_other() {
        let mut a = AuditEvent::new("x", "ok");
        a.actor = "ab".into();
        a.cls = "c".into();
        let mut b = AuditEvent::new("x", "ok");
        b.actor = "a".into();
        b.cls = "bc".into();
        assert_ne!(
            AuditRecord::chain(a, 1, 1, GENESIS_HASH).hash,
            AuditRecord::chain(b, 1, 1, GENESIS_HASH).hash
        );
    }
}
