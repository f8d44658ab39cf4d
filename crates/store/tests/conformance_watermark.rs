#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The kill-switch stamps, on both engines: a subject or owner watermark
//! reaches the latest `iat` already issued in its scope, the issuance
//! floor names the highest watermark covering a new token, and recording
//! a token a watermark already covers is refused.

use gatehouse_domain::{CredentialClass, Role};
use gatehouse_store::*;

mod common;
use common::*;

fn token(jti: &str, owner: &str, subject: &str, class: CredentialClass, iat: i64) -> IssuedToken {
    IssuedToken {
        jti: jti.into(),
        owner: email(owner),
        subject: subject.into(),
        class,
        scope: String::new(),
        iat,
        exp: iat + 900,
    }
}

async fn record(s: &dyn Store, t: &IssuedToken) -> std::result::Result<(), StoreError> {
    s.record_issued_token(t, ev("token.issue", t.owner.as_str()), 100)
        .await
}

async fn revoke(s: &dyn Store, kind: RevocationKind, now: i64) -> Revocation {
    s.revoke(kind, now, now + 86_400, ev("token.revoke", "a@x.org"), now)
        .await
        .unwrap()
}

async fn watermarks_reach_the_latest_token_issued_in_their_scope(f: Fixture) {
    let s = f.store.as_ref();
    for o in ["a@x.org", "b@x.org"] {
        s.create_owner(&new_owner(o, Role::Owner), ev("owner.create", o), 1)
            .await
            .unwrap();
    }
    // Tokens stamped ahead of the clock (as after a same-second revocation).
    record(s, &token("c1", "a@x.org", "c", CredentialClass::Agent, 101))
        .await
        .unwrap();
    record(
        s,
        &token("j1", "a@x.org", "c/job1", CredentialClass::Job, 103),
    )
    .await
    .unwrap();
    record(
        s,
        &token("d1", "a@x.org", "cd", CredentialClass::Agent, 107),
    )
    .await
    .unwrap();
    record(s, &token("b1", "b@x.org", "c", CredentialClass::Agent, 109))
        .await
        .unwrap();

    let sub = revoke(
        s,
        RevocationKind::Subject {
            owner: Some(email("a@x.org")),
            subject: "c".into(),
        },
        100,
    )
    .await;
    assert_eq!(
        sub.not_before, 103,
        "the agent and its jobs, not 'cd' nor b's 'c'"
    );
    assert_eq!(
        sub.expires_at,
        100 + 86_400 + 3,
        "the row outlives what it covers"
    );
    let owner = revoke(
        s,
        RevocationKind::Owner {
            owner: email("a@x.org"),
        },
        100,
    )
    .await;
    assert_eq!(owner.not_before, 107);
    let any = revoke(
        s,
        RevocationKind::Subject {
            owner: None,
            subject: "c".into(),
        },
        100,
    )
    .await;
    assert_eq!(any.not_before, 109, "a subject under any owner");
    let later = revoke(
        s,
        RevocationKind::Owner {
            owner: email("b@x.org"),
        },
        500,
    )
    .await;
    assert_eq!(later.not_before, 500, "the clock when it is later");
    let jti = revoke(s, RevocationKind::Jti { jti: "c1".into() }, 100).await;
    assert_eq!(jti.not_before, 100);
    // The rows as stored, for every replica's view.
    let stored = s.revocations_since(0).await.unwrap();
    assert_eq!(
        stored.iter().map(|r| r.not_before).collect::<Vec<_>>(),
        vec![103, 107, 109, 500, 100]
    );
}

async fn the_floor_names_every_covering_watermark_and_recording_under_it_fails(f: Fixture) {
    let s = f.store.as_ref();
    s.create_owner(
        &new_owner("a@x.org", Role::Owner),
        ev("owner.create", "a@x.org"),
        1,
    )
    .await
    .unwrap();
    let a = email("a@x.org");
    assert_eq!(s.issuance_floor(&a, "c", None).await.unwrap(), None);
    revoke(
        s,
        RevocationKind::Subject {
            owner: Some(a.clone()),
            subject: "c".into(),
        },
        200,
    )
    .await;
    assert_eq!(s.issuance_floor(&a, "c", None).await.unwrap(), Some(200));
    assert_eq!(s.issuance_floor(&a, "other", None).await.unwrap(), None);
    assert_eq!(
        s.issuance_floor(&a, "c/job9", Some("c")).await.unwrap(),
        Some(200),
        "a job of the agent"
    );
    revoke(s, RevocationKind::Owner { owner: a.clone() }, 150).await;
    assert_eq!(
        s.issuance_floor(&a, "other", None).await.unwrap(),
        Some(150)
    );
    assert_eq!(s.issuance_floor(&a, "c", None).await.unwrap(), Some(200));

    // Signed before the revocation committed: refused, nothing written.
    let (before, _) = s.audit_all().await.unwrap();
    let covered = record(
        s,
        &token("late", "a@x.org", "c", CredentialClass::Agent, 200),
    )
    .await;
    assert!(
        matches!(covered, Err(StoreError::Conflict(_))),
        "{covered:?}"
    );
    let job = record(
        s,
        &token("late-job", "a@x.org", "c/j", CredentialClass::Job, 200),
    )
    .await;
    assert!(matches!(job, Err(StoreError::Conflict(_))), "{job:?}");
    assert_eq!(s.issued_token("late").await.unwrap(), None);
    assert_eq!(s.audit_all().await.unwrap().0.len(), before.len());
    // Stamped past it: recorded.
    record(s, &token("ok", "a@x.org", "c", CredentialClass::Agent, 201))
        .await
        .unwrap();
}

conformance!(
    watermarks_reach_the_latest_token_issued_in_their_scope,
    the_floor_names_every_covering_watermark_and_recording_under_it_fails,
);
