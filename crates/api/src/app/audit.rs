//! Reading the audit log (SPEC §10): owners their own records, the
//! operator all; and checking its hash chain.

use gatehouse_domain::audit::{verify_chain, AuditRecord};
use gatehouse_domain::secret::constant_time_eq;
use gatehouse_domain::Principal;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// One page of records.
pub struct AuditPage {
    /// The page's records, only those whose action starts with the
    /// filter when one was given.
    pub records: Vec<AuditRecord>,
    /// Where the next page starts (`since_seq`), when this one was full.
    pub next_since: Option<i64>,
}

fn whole_log(principal: &Principal) -> bool {
    principal.is_operator() && principal.is_human()
}

/// Scope `audit:read` (every human session holds it). Records after
/// `since_seq`, at most `limit`; `action` keeps those whose action starts
/// with it (the page is cut before filtering, so paging stays by `seq`).
pub async fn page(
    st: &AppState,
    principal: &Principal,
    since_seq: Option<i64>,
    limit: Option<i64>,
    action: Option<&str>,
) -> ApiResult<AuditPage> {
    let since = since_seq.unwrap_or(0);
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if since < 0 || !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "since_seq must be >= 0 and limit within 1..={MAX_LIMIT}"
        )));
    }
    if action.is_some_and(|a| a.len() > 128) {
        return Err(ApiError::bad_request("action is at most 128 characters"));
    }
    let scope = (!whole_log(principal)).then_some(&principal.owner);
    let records = st.store.audit_page(scope, since, limit).await?;
    let next_since = (records.len() as i64 == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    let records = match action {
        Some(prefix) => records
            .into_iter()
            .filter(|r| r.action.starts_with(prefix))
            .collect(),
        None => records,
    };
    Ok(AuditPage {
        records,
        next_since,
    })
}

/// The result of checking the chain.
pub enum ChainCheck {
    /// The whole chain, every link and hash, up to the stored head.
    Intact {
        records: u64,
    },
    /// An owner's own records, each hash recomputed (the links run
    /// through other owners' records, which only the operator reads).
    OwnIntact {
        records: u64,
    },
    Broken {
        seq: i64,
        reason: String,
    },
}

/// Scope `audit:read`. The operator's human session checks the whole
/// chain (as `gatehouse audit verify`); anyone else their own records.
pub async fn verify(st: &AppState, principal: &Principal) -> ApiResult<ChainCheck> {
    if whole_log(principal) {
        let (records, head) = st.store.audit_all().await?;
        return Ok(match verify_chain(&records, Some(&head)) {
            Ok(n) => ChainCheck::Intact { records: n },
            Err(b) => ChainCheck::Broken {
                seq: b.seq,
                reason: b.reason,
            },
        });
    }
    let mut since = 0;
    let mut checked = 0u64;
    loop {
        let records = st
            .store
            .audit_page(Some(&principal.owner), since, MAX_LIMIT)
            .await?;
        for r in &records {
            if !constant_time_eq(r.compute_hash().as_bytes(), r.hash.as_bytes()) {
                return Ok(ChainCheck::Broken {
                    seq: r.seq,
                    reason: "hash does not match the record's content (edited)".into(),
                });
            }
            checked += 1;
        }
        match records.last() {
            Some(last) if records.len() as i64 == MAX_LIMIT => since = last.seq,
            _ => return Ok(ChainCheck::OwnIntact { records: checked }),
        }
    }
}
