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
    let before = audit_len(&f.store).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 {
            f.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let completion = Completion {
                approval_id: "r1".into(),
                result: format!("{{\"by\":{i}}}"),
                sealed_result: None,
            };
            s.run_gated(
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
        result: "{}".into(),
        sealed_result: None,
    };
    let outcome = f
        .store
        .run_gated(
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

conformance!(
    decisions_count_each_human_once_and_n_of_m,
    concurrent_decisions_on_two_replicas_are_counted_in_turn,
    an_approved_action_runs_exactly_once_across_replicas,
    a_failed_action_leaves_nothing_half_done,
    revoking_the_requester_expires_only_its_pending_requests,
);
