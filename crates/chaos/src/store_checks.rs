//! The checks at the end of a run, against the store itself: every
//! approval acknowledged exists and every approved one ran exactly once
//! (audit records counted in PostgreSQL), every acknowledged write is
//! listed, the audit chain is gapless and `gatehouse audit verify` agrees,
//! and the token service saw one rotator.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use sqlx::Row;

use crate::checks;
use crate::cluster::{Launcher, Target};
use crate::load::{self, World};
use crate::upstream;

/// The end-of-run checks against the store: approvals, acknowledged
/// writes, the audit chain, the rotation.
pub async fn final_checks(
    w: &World,
    targets: &[Target],
    db_url: &str,
    tokens: &upstream::TokenService,
    tls_seen: &upstream::TlsSeen,
    launcher: &Launcher,
    cwd: &std::path::Path,
) -> Result<Value> {
    let v = &w.violations;
    let t = targets.first().context("no replica up at the end")?;
    // Every approval acknowledged exists; the ones left pending are decided.
    let acked = w
        .acked_approvals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut unknown = 0;
    for (id, _) in &acked {
        match load::approval_status(w, t, id).await? {
            None => {
                unknown += 1;
                v.add(
                    checks::NOTHING_LOST,
                    format!("approval {id} was acknowledged (202) but is not in the store"),
                );
            }
            Some(s) if s == "pending" => {
                let other = targets.get(1).unwrap_or(t);
                let code = w.decide(other, id).await;
                if code != 200 {
                    v.add(
                        checks::EXACTLY_ONCE,
                        format!("approval {id} could not be decided at the end ({code})"),
                    );
                }
            }
            Some(_) => {}
        }
    }
    // Every approved one runs (the sweeper finishes any left over).
    let approved = w.approved.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut not_executed: Vec<String> = approved.iter().cloned().collect();
    while !not_executed.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for id in &not_executed {
            if load::approval_status(w, t, id).await?.as_deref() != Some("executed") {
                still.push(id.clone());
            }
        }
        not_executed = still;
        if !not_executed.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for id in &not_executed {
        v.add(
            checks::EXACTLY_ONCE,
            format!("approval {id} approved but not executed"),
        );
    }
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db_url)
        .await?;
    let rows = sqlx::query(
        "SELECT target, count(*) AS n FROM audit WHERE action = 'approval.execute' GROUP BY target",
    )
    .fetch_all(&pool)
    .await?;
    let mut executions: BTreeMap<String, i64> = BTreeMap::new();
    for r in rows {
        let target: String = r.try_get("target")?;
        let n: i64 = r.try_get("n")?;
        let id = target.split(' ').next().unwrap_or("").to_string();
        *executions.entry(id).or_insert(0) += n;
    }
    for e in checks::exactly_once(&approved, &executions) {
        v.add(checks::EXACTLY_ONCE, e);
    }
    let rows = sqlx::query(
        "SELECT target, count(*) AS n FROM audit WHERE action = 'secret.write' AND target LIKE 'a-%' GROUP BY target HAVING count(*) > 1",
    )
    .fetch_all(&pool)
    .await?;
    for r in rows {
        let target: String = r.try_get("target")?;
        v.add(
            checks::EXACTLY_ONCE,
            format!("the approved write of {target} happened more than once"),
        );
    }
    // Acknowledged writes are in the store: direct writes and approved ones.
    let listed = load::listed_secrets(w, t).await?;
    let mut expected: Vec<String> = w
        .acked_secrets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    expected.extend(
        acked
            .iter()
            .filter(|(id, _)| approved.contains(id))
            .map(|(_, n)| n.clone()),
    );
    for name in checks::missing(&expected, &listed) {
        v.add(
            checks::NOTHING_LOST,
            format!("secret {name} was acknowledged but is not in the store"),
        );
    }
    // The audit chain: gapless, and `gatehouse audit verify` agrees.
    let row = sqlx::query(
        "SELECT count(*) AS n, coalesce(min(seq), 0) AS lo, coalesce(max(seq), 0) AS hi FROM audit",
    )
    .fetch_one(&pool)
    .await?;
    let (count, lo, hi): (i64, i64, i64) =
        (row.try_get("n")?, row.try_get("lo")?, row.try_get("hi")?);
    let head: i64 = sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(&pool)
        .await?
        .try_get("seq")?;
    if let Err(e) = checks::gapless(count, lo, hi, head) {
        v.add(checks::AUDIT_CHAIN, e);
    }
    pool.close().await;
    let out = launcher
        .command(&["audit", "verify", "--database-url", db_url], cwd)
        .output()
        .context("run gatehouse audit verify")?;
    let verify = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        v.add(
            checks::AUDIT_CHAIN,
            format!(
                "gatehouse audit verify: {verify} {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        );
    }
    // One rotator: never two mints at once, and rotation did happen.
    let mints = tokens.mints.load(Ordering::SeqCst);
    let concurrent = tokens.max_concurrent_mints.load(Ordering::SeqCst);
    if concurrent > 1 {
        v.add(
            checks::ONE_ROTATOR,
            format!("{concurrent} mints ran at once"),
        );
    }
    if mints < 2 {
        v.add(
            checks::ONE_ROTATOR,
            format!("only {mints} mints: the rotation was not exercised"),
        );
    }
    let not_swapped = tls_seen.not_swapped.load(Ordering::SeqCst);
    if not_swapped > 0 {
        v.add(
            checks::SWAP,
            format!("{not_swapped} requests reached the swap host without the real value"),
        );
    }
    let approved_secrets: BTreeSet<&String> = expected.iter().collect();
    Ok(json!({
        "approvals": {
            "requested": acked.len(),
            "approved": approved.len(),
            "executed_once": approved.len().saturating_sub(not_executed.len()),
            "missing": unknown,
        },
        "secrets_acknowledged": approved_secrets.len(),
        "audit": {"records": count, "seq": [lo, hi], "head": head, "verify": verify},
        "rotation": {
            "mints": mints,
            "max_concurrent_mints": concurrent,
            "revokes": tokens.revokes.load(Ordering::SeqCst),
            "live_tokens": tokens.live(),
        },
        "upstream": {
            "tunnelled_requests": tls_seen.tunnel_requests.load(Ordering::SeqCst),
            "swapped_requests": tls_seen.swapped.load(Ordering::SeqCst),
            "not_swapped": not_swapped,
        },
    }))
}
