//! The invariants, as pure checks over what the harness observed, so each
//! is unit-tested apart from a run. A run fails when any reports a
//! violation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::Serialize;

use crate::stats::Sample;

/// Every violation seen, in order, each under the invariant it breaks.
#[derive(Default)]
pub struct Violations(Mutex<Vec<Violation>>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

impl Violations {
    pub fn add(&self, invariant: &'static str, detail: impl Into<String>) {
        let v = Violation {
            invariant,
            detail: detail.into(),
        };
        eprintln!("chaos: VIOLATION {}: {}", v.invariant, v.detail);
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(v);
    }

    pub fn all(&self) -> Vec<Violation> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub const REVOKED_ACCEPTED: &str = "no revoked token accepted after the propagation bound";
pub const EXACTLY_ONCE: &str = "every approval decided and run exactly once";
pub const ONE_ROTATOR: &str = "one rotator per upstream";
pub const AUDIT_CHAIN: &str = "the audit chain verifies with gapless seq";
pub const FAIL_CLOSED: &str = "fail closed while the store is away";
pub const RECOVERY: &str = "recovery without restarting any replica";
pub const NOTHING_LOST: &str = "nothing lost that was acknowledged";
pub const SWAP: &str = "placeholders swapped only towards their host";

/// Token-authenticated answers that succeeded while the store was away:
/// requests sent after `from` (the outage began, plus the staleness bound
/// and a margin) whose answer came before `to` (the store was back). Each
/// needed the store or a confirmed revocation view, so each is a stale
/// allow.
pub fn stale_allows(samples: &[Sample], from: f64, to: f64) -> Vec<String> {
    samples
        .iter()
        .filter(|s| s.start >= from && s.end <= to && (200..300).contains(&s.status))
        .map(|s| {
            format!(
                "{} answered {} at +{:.2}s..+{:.2}s during the outage",
                s.op.name(),
                s.status,
                s.start,
                s.end
            )
        })
        .collect()
}

/// Answers by status of the requests [`stale_allows`] looks at: proof that
/// the window was exercised.
pub fn answers_within(samples: &[Sample], from: f64, to: f64) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in samples.iter().filter(|s| s.start >= from && s.end <= to) {
        *out.entry(s.status.to_string()).or_insert(0) += 1;
    }
    out
}

/// `seq` runs 1..=count with no gap and no fork.
pub fn gapless(count: i64, min: i64, max: i64, head: i64) -> Result<(), String> {
    if count == 0 && max == 0 && head == 0 {
        return Ok(());
    }
    if min != 1 || max != count || head != max {
        return Err(format!(
            "audit seq not gapless: {count} records, seq {min}..={max}, head {head}"
        ));
    }
    Ok(())
}

/// Each approved approval ran once; nothing ran twice.
pub fn exactly_once(
    approved: &BTreeSet<String>,
    executions: &BTreeMap<String, i64>,
) -> Vec<String> {
    let mut out = Vec::new();
    for id in approved {
        match executions.get(id).copied().unwrap_or(0) {
            1 => {}
            n => out.push(format!("approval {id} approved, executed {n} times")),
        }
    }
    for (id, n) in executions {
        if *n > 1 && !approved.contains(id) {
            out.push(format!("approval {id} executed {n} times"));
        }
    }
    out
}

/// Acknowledged writes that are not in the store afterwards.
pub fn missing<'a>(
    acknowledged: impl IntoIterator<Item = &'a String>,
    present: &BTreeSet<String>,
) -> Vec<String> {
    acknowledged
        .into_iter()
        .filter(|name| !present.contains(*name))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Op;

    fn s(op: Op, start: f64, end: f64, status: u16) -> Sample {
        Sample {
            phase: 3,
            op,
            start,
            end,
            status,
            ok: status == 200,
        }
    }

    #[test]
    fn a_success_inside_the_outage_is_a_stale_allow_and_refusals_are_not() {
        let samples = vec![
            s(Op::Whoami, 10.0, 10.1, 200), // before the bound: the view was fresh
            s(Op::Whoami, 13.5, 13.6, 503), // failing closed
            s(Op::Credentials, 14.0, 14.2, 200), // a stale allow
            s(Op::Tunnel, 15.0, 15.1, 403), // a refusal
            s(Op::Whoami, 19.0, 21.0, 200), // answered after the store was back
            s(Op::Intercept, 16.0, 16.5, 0), // no answer at all
        ];
        let found = stale_allows(&samples, 13.0, 20.0);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("credentials answered 200"));
        let seen = answers_within(&samples, 13.0, 20.0);
        assert_eq!(seen.values().sum::<usize>(), 4);
        assert_eq!(seen["503"], 1);
    }

    #[test]
    fn audit_seq_must_run_from_one_without_gaps_up_to_the_head() {
        assert_eq!(gapless(5, 1, 5, 5), Ok(()));
        assert_eq!(gapless(0, 0, 0, 0), Ok(()));
        assert!(gapless(4, 1, 5, 5).is_err(), "a gap");
        assert!(gapless(5, 2, 6, 6).is_err(), "does not start at 1");
        assert!(gapless(5, 1, 5, 6).is_err(), "head ahead of the records");
    }

    #[test]
    fn an_approval_runs_exactly_once() {
        let approved: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
        let mut runs = BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 2)]);
        runs.insert("z".into(), 2);
        runs.insert("y".into(), 1);
        let found = exactly_once(&approved, &runs);
        assert_eq!(
            found,
            [
                "approval b approved, executed 2 times",
                "approval c approved, executed 0 times",
                "approval z executed 2 times"
            ]
        );
    }

    #[test]
    fn an_acknowledged_write_missing_from_the_store_is_reported() {
        let acked = ["s1".to_string(), "s2".to_string()];
        let present: BTreeSet<String> = ["s1".to_string(), "other".to_string()].into();
        assert_eq!(missing(&acked, &present), ["s2"]);
    }

    #[test]
    fn violations_are_kept_in_order() {
        let v = Violations::default();
        v.add(FAIL_CLOSED, "one");
        v.add(RECOVERY, "two");
        let all = v.all();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].invariant, all[1].detail.as_str()),
            (FAIL_CLOSED, "two")
        );
    }
}
