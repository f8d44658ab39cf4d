#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The store's half of approval gates on both engines: decisions counted
//! once per human under concurrency, an approved action run exactly once
//! by whichever caller gets there first, and nothing half-done.

use std::sync::Arc;

use gatehouse_domain::approvals::{ApprovalStatus, Decision};
use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::{CredentialClass, Role};
use gatehouse_store::*;

mod common;
use common::*;

const ALICE: &str = "alice@example.com";

fn pending(id: &str, required: u32, expires_at: i64) -> ApprovalRecord {
    ApprovalRecord {
        id: id.into(),
        owner: email(ALICE),
        verb: "secret.write".into(),
        params: r#"{"name":"K"}"#.into(),
        params_digest: vec![7; 32],
        sealed: Some(vec![1, 2, 3]),
        requester: Requester {
            class: CredentialClass::Agent,
            subject: "bot".into(),
            jti: Some(format!("jti-{id}")),
            agent: Some("bot".into()),
            job: None,
        },
        status: ApprovalStatus::Pending,
        required,
        created_at: 100,
        expires_at,
        updated_at: 100,
        result: None,
        sealed_result: None,
        error: None,
        decisions: Vec::new(),
    }
}

fn decision(who: &str, d: Decision) -> ApprovalDecision {
    ApprovalDecision {
        decider: who.into(),
        decision: d,
        reason: String::new(),
        decided_at: 110,
    }
}

async fn setup(f: &Fixture) {
    f.store
        .create_owner(
            &new_owner(ALICE, Role::Owner),
            ev("owner.create", ALICE),
            10,
        )
        .await
        .unwrap();
}

async fn approved(f: &Fixture, id: &str) {
    let s = &f.store;
    s.create_approval(&pending(id, 1, 10_000), ev("approval.request", ALICE), 100)
        .await
        .unwrap();
    assert_eq!(
        s.decide_approval(
            id,
            &decision("h@example.com", Decision::Approve),
            ev("approval.decide", ALICE),
            110
        )
        .await
        .unwrap(),
        DecideResult::Recorded(ApprovalStatus::Approved)
    );
}

async fn audit_len(s: &Arc<dyn Store>) -> usize {
    s.audit_all().await.unwrap().0.len()
}

async fn decisions_count_each_human_once_and_n_of_m(f: Fixture) {
    setup(&f).await;
    let s = &f.store;
    s.create_approval(
        &pending("a1", 2, 10_000),
        ev("approval.request", ALICE),
        100,
    )
    .await
    .unwrap();
    let e = || ev("approval.decide", ALICE);
    assert_eq!(
        s.decide_approval(
            "a1",
            &decision("x@example.com", Decision::Approve),
            e(),
            110
        )
        .await
        .unwrap(),
        DecideResult::Recorded(ApprovalStatus::Pending)
    );
    assert_eq!(
        s.decide_approval(
            "a1",
            &decision("x@example.com", Decision::Approve),
            e(),
            111
        )
        .await
        .unwrap(),
        DecideResult::AlreadyDecided
    );
    assert_eq!(
        s.decide_approval(
            "a1",
            &decision("y@example.com", Decision::Approve),
            e(),
            112
        )
        .await
        .unwrap(),
        DecideResult::Recorded(ApprovalStatus::Approved)
    );
    assert_eq!(
        s.decide_approval("a1", &decision("z@example.com", Decision::Deny), e(), 113)
            .await
            .unwrap(),
        DecideResult::NotPending(ApprovalStatus::Approved)
    );
    assert_eq!(
        s.decide_approval("nope", &decision("z@example.com", Decision::Deny), e(), 113)
            .await
            .unwrap(),
        DecideResult::NotFound
    );
    let a1 = s.approval("a1").await.unwrap().unwrap();
    assert_eq!(a1.decisions.len(), 2);
    assert_eq!(a1.requester.agent.as_deref(), Some("bot"));
    assert_eq!(a1.sealed, Some(vec![1, 2, 3]));

    // Past its expiry a pending approval cannot be decided, and says so.
    s.create_approval(&pending("a2", 1, 200), ev("approval.request", ALICE), 100)
        .await
        .unwrap();
    assert_eq!(
        s.decide_approval(
            "a2",
            &decision("x@example.com", Decision::Approve),
            e(),
            200
        )
        .await
        .unwrap(),
        DecideResult::NotPending(ApprovalStatus::Expired)
    );
    assert_eq!(
        s.approval("a2").await.unwrap().unwrap().status,
        ApprovalStatus::Expired
    );
}

async fn concurrent_decisions_on_two_replicas_are_counted_in_turn(f: Fixture) {
    setup(&f).await;
    let other = connect(&f.url).await.unwrap();
    f.store
        .create_approval(
            &pending("c1", 2, 10_000),
            ev("approval.request", ALICE),
            100,
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 {
            f.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            s.decide_approval(
                "c1",
                &decision(&format!("h{i}@example.com"), Decision::Approve),
                ev("approval.decide", ALICE),
                110,
            )
            .await
            .unwrap()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let approved = results
        .iter()
        .filter(|r| **r == DecideResult::Recorded(ApprovalStatus::Approved))
        .count();
    let first = results
        .iter()
        .filter(|r| **r == DecideResult::Recorded(ApprovalStatus::Pending))
        .count();
    assert_eq!((first, approved), (1, 1), "{results:?}");
    assert_eq!(
        f.store
            .approval("c1")
            .await
            .unwrap()
            .unwrap()
            .decisions
            .len(),
        2
    );
}

async fn an_approved_action_runs_exactly_once_across_replicas(f: Fixture) {
    setup(&f).await;
    approved(&f, "r1").await;
    let other = connect(&f.url).await.unwrap();
    let other_key = Arc::new(other.take_gate_key().unwrap());
    let before = audit_len(&f.store).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (s, key) = if i % 2 == 0 {
            (f.store.clone(), f.key.clone())
        } else {
            (other.clone(), other_key.clone())
        };
        tasks.push(tokio::spawn(async move {
            let completion = Completion {
                approval_id: "r1".into(),
                claimed: false,
                result: format!("{{\"by\":{i}}}"),
                sealed_result: None,
            };
            s.run_gated(
                &key,
                &GatedAction::PutSecret(secret(ALICE, "K", format!("v{i}").as_bytes())),
                Some(&completion),
                vec![ev("secret.write", ALICE), ev("approval.execute", ALICE)],
                120,
            )
            .await
            .unwrap()
        }));
    }
    let mut ran = 0;
    for t in tasks {
        match t.await.unwrap() {
            RunResult::Ran(ActionEffect::Secret(PutOutcome::Created)) => ran += 1,
            RunResult::NotApproved => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ran, 1);
    assert_eq!(audit_len(&f.store).await, before + 2);
    let r1 = f.store.approval("r1").await.unwrap().unwrap();
    assert_eq!(r1.status, ApprovalStatus::Executed);
    let winner: serde_json::Value = serde_json::from_str(r1.result.as_deref().unwrap()).unwrap();
    let stored = f.store.secret(&email(ALICE), "K").await.unwrap().unwrap();
    assert_eq!(stored.sealed, format!("v{}", winner["by"]).into_bytes());
    assert!(f.store.approved_approvals(10).await.unwrap().is_empty());
}

async fn a_failed_action_leaves_nothing_half_done(f: Fixture) {
    setup(&f).await;
    approved(&f, "f1").await;
    let before = audit_len(&f.store).await;
    let completion = Completion {
        approval_id: "f1".into(),
        claimed: false,
        result: "{}".into(),
        sealed_result: None,
    };
    let outcome = f
        .store
        .run_gated(
            &f.key,
            &GatedAction::DeleteSecret {
                owner: email(ALICE),
                name: "MISSING".into(),
            },
            Some(&completion),
            vec![ev("secret.delete", ALICE)],
            120,
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RunResult::Ran(ActionEffect::Failed("no secret named MISSING".into()))
    );
    assert_eq!(audit_len(&f.store).await, before);
    assert_eq!(
        f.store.approval("f1").await.unwrap().unwrap().status,
        ApprovalStatus::Approved
    );
    assert!(f
        .store
        .fail_approval(
            "f1",
            "no secret named MISSING",
            ev("approval.fail", ALICE),
            121
        )
        .await
        .unwrap());
    assert!(!f
        .store
        .fail_approval("f1", "again", ev("approval.fail", ALICE), 122)
        .await
        .unwrap());
    let f1 = f.store.approval("f1").await.unwrap().unwrap();
    assert_eq!(f1.status, ApprovalStatus::Failed);
    assert_eq!(f1.error.as_deref(), Some("no secret named MISSING"));
}

async fn revoking_the_requester_expires_only_its_pending_requests(f: Fixture) {
    setup(&f).await;
    let s = &f.store;
    s.create_approval(
        &pending("p1", 1, 10_000),
        ev("approval.request", ALICE),
        100,
    )
    .await
    .unwrap();
    let mut other = pending("p2", 1, 10_000);
    other.requester.subject = "other".into();
    other.requester.agent = Some("other".into());
    s.create_approval(&other, ev("approval.request", ALICE), 100)
        .await
        .unwrap();
    s.revoke(
        RevocationKind::Subject {
            owner: Some(email(ALICE)),
            subject: "bot".into(),
        },
        130,
        10_000,
        AuditEvent::new("token.revoke", "ok"),
        130,
    )
    .await
    .unwrap();
    assert_eq!(
        s.approval("p1").await.unwrap().unwrap().status,
        ApprovalStatus::Expired
    );
    assert_eq!(
        s.approval("p2").await.unwrap().unwrap().status,
        ApprovalStatus::Pending
    );
    let (records, _) = s.audit_all().await.unwrap();
    assert!(records
        .iter()
        .any(|r| r.action == "approval.expire" && r.target.starts_with("p1 ")));
    // The time-to-live sweep expires the rest once due, and only then.
    assert!(s.expire_approvals(9_999).await.unwrap().is_empty());
    assert_eq!(s.expire_approvals(10_000).await.unwrap().len(), 1);
    let listed = s
        .approvals(&ApprovalFilter {
            owner: Some(email(ALICE)),
            status: Some(ApprovalStatus::Expired),
            requester: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
}

fn completion(id: &str, claimed: bool, sealed: Option<Vec<u8>>) -> Completion {
    Completion {
        approval_id: id.into(),
        claimed,
        result: "{}".into(),
        sealed_result: sealed,
    }
}

async fn run_put(f: &Fixture, c: &Completion, value: &[u8]) -> RunResult {
    f.store
        .run_gated(
            &f.key,
            &GatedAction::PutSecret(secret(ALICE, "K", value)),
            Some(c),
            vec![ev("approval.execute", ALICE)],
            130,
        )
        .await
        .unwrap()
}

async fn a_claim_has_one_winner_across_replicas_and_only_the_claimer_runs_it(f: Fixture) {
    setup(&f).await;
    approved(&f, "c1").await;
    let other = connect(&f.url).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 {
            f.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            s.claim_approval("c1", 120).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1, "one claimer across replicas");
    let c1 = f.store.approval("c1").await.unwrap().unwrap();
    assert_eq!(c1.status, ApprovalStatus::Executing);
    assert!(
        f.store.approved_approvals(10).await.unwrap().is_empty(),
        "a claimed approval is not left for the sweeper"
    );
    // Whoever did not claim it cannot run it as merely approved.
    assert_eq!(
        run_put(&f, &completion("c1", false, None), b"x").await,
        RunResult::NotApproved
    );
    assert!(f.store.secret(&email(ALICE), "K").await.unwrap().is_none());
    assert_eq!(
        run_put(&f, &completion("c1", true, None), b"v").await,
        RunResult::Ran(ActionEffect::Secret(PutOutcome::Created))
    );
    assert_eq!(
        f.store.approval("c1").await.unwrap().unwrap().status,
        ApprovalStatus::Executed
    );
    assert_eq!(
        run_put(&f, &completion("c1", true, None), b"w").await,
        RunResult::NotApproved,
        "once"
    );
    assert!(!f.store.claim_approval("c1", 140).await.unwrap());
}

async fn an_interrupted_execution_fails_and_is_never_run_again(f: Fixture) {
    setup(&f).await;
    approved(&f, "i1").await;
    assert!(f.store.claim_approval("i1", 120).await.unwrap());
    assert!(
        f.store.fail_interrupted(119, 500).await.unwrap().is_empty(),
        "a recent claim is left to its executor"
    );
    let before = audit_len(&f.store).await;
    let failed = f.store.fail_interrupted(120, 720).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(audit_len(&f.store).await, before + 1);
    let i1 = f.store.approval("i1").await.unwrap().unwrap();
    assert_eq!(i1.status, ApprovalStatus::Failed);
    assert_eq!(i1.error.as_deref(), Some("interrupted"));
    assert_eq!(
        run_put(&f, &completion("i1", true, None), b"late").await,
        RunResult::NotApproved,
        "a late executor records nothing"
    );
    assert!(!f.store.claim_approval("i1", 730).await.unwrap());
    assert!(f.store.approved_approvals(10).await.unwrap().is_empty());
    // A claimed run that fails is recorded failed, from `executing`.
    approved(&f, "i2").await;
    assert!(f.store.claim_approval("i2", 120).await.unwrap());
    assert!(f
        .store
        .fail_approval("i2", "upstream down", ev("approval.fail", ALICE), 121)
        .await
        .unwrap());
    assert_eq!(
        f.store.approval("i2").await.unwrap().unwrap().status,
        ApprovalStatus::Failed
    );
}

async fn a_produced_secret_is_taken_once_by_the_requesting_jti(f: Fixture) {
    setup(&f).await;
    approved(&f, "t1").await;
    assert!(
        !f.store
            .take_approval_result("t1", "jti-t1", 125)
            .await
            .unwrap(),
        "nothing before it ran"
    );
    assert_eq!(
        run_put(&f, &completion("t1", false, Some(vec![9, 9])), b"v").await,
        RunResult::Ran(ActionEffect::Secret(PutOutcome::Created))
    );
    assert!(!f
        .store
        .take_approval_result("t1", "jti-other", 131)
        .await
        .unwrap());
    assert_eq!(
        f.store.approval("t1").await.unwrap().unwrap().sealed_result,
        Some(vec![9, 9])
    );
    let s = f.store.clone();
    let other = connect(&f.url).await.unwrap();
    let (a, b) = tokio::join!(
        s.take_approval_result("t1", "jti-t1", 132),
        other.take_approval_result("t1", "jti-t1", 132)
    );
    assert_eq!(u8::from(a.unwrap()) + u8::from(b.unwrap()), 1, "one taker");
    assert_eq!(
        f.store.approval("t1").await.unwrap().unwrap().sealed_result,
        None
    );
}

async fn an_agents_secret_ceiling_is_a_gated_action(f: Fixture) {
    setup(&f).await;
    f.store
        .create_agent(&email(ALICE), "bot", ev("agent.create", ALICE), 20)
        .await
        .unwrap();
    assert_eq!(
        f.store.agents(&email(ALICE)).await.unwrap()[0].secrets,
        None
    );
    let set = |agent: &str| GatedAction::SetAgentSecrets {
        owner: email(ALICE),
        agent: agent.into(),
        secrets: r#"["GH"]"#.into(),
    };
    assert_eq!(
        f.store
            .run_gated(&f.key, &set("bot"), None, vec![], 30)
            .await
            .unwrap(),
        RunResult::Ran(ActionEffect::Done)
    );
    assert_eq!(
        f.store.agents(&email(ALICE)).await.unwrap()[0]
            .secrets
            .as_deref(),
        Some(r#"["GH"]"#)
    );
    assert_eq!(
        f.store
            .run_gated(&f.key, &set("nobody"), None, vec![], 31)
            .await
            .unwrap(),
        RunResult::Ran(ActionEffect::Failed("no agent named nobody".into()))
    );
}

/// The epoch of `store` once it can vouch for it (PostgreSQL: its
/// listener is listening), within 5 s.
async fn confirmed(store: &Arc<dyn Store>) -> u64 {
    let epoch = store.binding_epoch();
    for _ in 0..100 {
        if let Some(e) = epoch.current() {
            return e;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the binding epoch was never confirmed");
}

/// Whether `store`'s epoch moves past `seen` within 2 s.
async fn moves(store: &Arc<dyn Store>, seen: u64) -> bool {
    for _ in 0..200 {
        if store.binding_epoch().current().is_some_and(|e| e != seen) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

async fn a_binding_write_moves_the_epoch_on_this_replica_at_once_and_on_the_others(f: Fixture) {
    setup(&f).await;
    let other = connect(&f.url).await.unwrap();
    let here = confirmed(&f.store).await;
    let there = confirmed(&other).await;
    f.store
        .run_gated(
            &f.key,
            &GatedAction::PutSecret(secret(ALICE, "K", b"v1")),
            None,
            vec![],
            30,
        )
        .await
        .unwrap();
    // The writer's own epoch has moved by the time the write returns.
    assert_ne!(f.store.binding_epoch().current(), Some(here));
    // Another replica's moves too (SQLite: the same file in this process,
    // at once; PostgreSQL: pushed by NOTIFY).
    assert!(
        moves(&other, there).await,
        "the other replica heard the write"
    );
    // Deleting a job and dropping placeholders move it as well.
    for n in 0..2 {
        let seen = confirmed(&f.store).await;
        if n == 0 {
            f.store
                .delete_job(&email(ALICE), "no-such-job", ev("job.delete", ALICE), 31)
                .await
                .unwrap();
        } else {
            f.store
                .drop_agent_placeholders(&email(ALICE), "bot")
                .await
                .unwrap();
        }
        assert_ne!(f.store.binding_epoch().current(), Some(seen));
    }
}

conformance!(
    a_binding_write_moves_the_epoch_on_this_replica_at_once_and_on_the_others,
    a_claim_has_one_winner_across_replicas_and_only_the_claimer_runs_it,
    an_interrupted_execution_fails_and_is_never_run_again,
    a_produced_secret_is_taken_once_by_the_requesting_jti,
    an_agents_secret_ceiling_is_a_gated_action,
    decisions_count_each_human_once_and_n_of_m,
    concurrent_decisions_on_two_replicas_are_counted_in_turn,
    an_approved_action_runs_exactly_once_across_replicas,
    a_failed_action_leaves_nothing_half_done,
    revoking_the_requester_expires_only_its_pending_requests,
);
