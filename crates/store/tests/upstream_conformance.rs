#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Upstream credential storage (SPEC §8), on SQLite and PostgreSQL alike:
//! the state machine of a rotation, owner activity, and the per-upstream
//! lock that picks one rotating replica.

use std::sync::Arc;

use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::{CredentialClass, Email, Role};
use gatehouse_store::test_support::{fresh_postgres_url, sqlite_url};
use gatehouse_store::*;

struct Fixture {
    store: Arc<dyn Store>,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    Fixture {
        store: connect(&url).await.unwrap(),
        url,
        _dir: Some(dir),
    }
}

async fn postgres() -> Fixture {
    let url = fresh_postgres_url().await;
    Fixture {
        store: connect(&url).await.unwrap(),
        url,
        _dir: None,
    }
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn ev(action: &str) -> AuditEvent {
    let mut e = AuditEvent::new(action, "ok");
    e.owner = "a@x.org".into();
    e
}

async fn owner(s: &Arc<dyn Store>) {
    let o = NewOwner {
        email: email("a@x.org"),
        role: Role::Owner,
        data_key: WrappedKey {
            wrapped: vec![1],
            master_kid: "m".into(),
        },
        created_at: 1,
    };
    s.create_owner(&o, ev("owner.create"), 1).await.unwrap();
}

fn slot(id: &str, expires_at: i64) -> UpstreamSlot {
    UpstreamSlot {
        token_id: id.into(),
        sealed: id.as_bytes().to_vec(),
        expires_at,
    }
}

fn secret(value: &[u8], at: i64) -> SecretRecord {
    SecretRecord {
        owner: email("a@x.org"),
        name: "upstream.dbx".into(),
        sealed: value.to_vec(),
        allowed_hosts: "[\"dbx.example.com\"]".into(),
        inject: None,
        created_at: at,
        updated_at: at,
    }
}

fn install(current: &str, pasted: Option<&str>, expires_at: i64, at: i64) -> UpstreamInstall {
    UpstreamInstall {
        name: "dbx".into(),
        owner: email("a@x.org"),
        current: slot(current, expires_at),
        pasted_id: pasted.map(str::to_string),
        secret: secret(current.as_bytes(), at),
    }
}

async fn states(s: &Arc<dyn Store>) -> Vec<(String, UpstreamTokenState)> {
    let mut v: Vec<_> = s
        .upstream_tokens("dbx")
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.token_id, t.state))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

async fn a_rotation_moves_through_its_states_one_transaction_at_a_time(f: Fixture) {
    use UpstreamTokenState::*;
    let s = &f.store;
    owner(s).await;
    assert!(s.upstream_state("dbx").await.unwrap().is_none());
    s.upstream_install(
        &install("t1", Some("pat"), 1000, 100),
        ev("upstream.bootstrap"),
        100,
    )
    .await
    .unwrap();
    let st = s.upstream_state("dbx").await.unwrap().unwrap();
    assert_eq!(st.current, Some(slot("t1", 1000)));
    assert_eq!((st.last_rotation, st.pending.clone()), (Some(100), None));
    assert_eq!(
        s.secret(&email("a@x.org"), "upstream.dbx")
            .await
            .unwrap()
            .unwrap()
            .sealed,
        b"t1"
    );
    assert_eq!(
        states(s).await,
        vec![("pat".into(), PendingRevoke), ("t1".into(), Current)]
    );
    // Single-shot while the current token is unexpired.
    let again = s
        .upstream_install(
            &install("t9", None, 2000, 200),
            ev("upstream.bootstrap"),
            200,
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    // Persist pending only against the expected current, once.
    let wrong = s
        .upstream_persist_pending("dbx", "t0", &slot("t2", 1600), ev("upstream.mint"), 700)
        .await;
    assert!(matches!(wrong, Err(StoreError::Conflict(_))));
    s.upstream_persist_pending("dbx", "t1", &slot("t2", 1600), ev("upstream.mint"), 700)
        .await
        .unwrap();
    let twice = s
        .upstream_persist_pending("dbx", "t1", &slot("t3", 1600), ev("upstream.mint"), 700)
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))));
    assert_eq!(
        s.upstream_state("dbx").await.unwrap().unwrap().pending,
        Some(slot("t2", 1600))
    );

    // Switch: pending becomes current, the secret follows, old is queued.
    s.upstream_switch("dbx", "t2", &secret(b"t2", 710), ev("upstream.rotate"), 710)
        .await
        .unwrap();
    let st = s.upstream_state("dbx").await.unwrap().unwrap();
    assert_eq!(
        (st.current, st.pending, st.last_rotation),
        (Some(slot("t2", 1600)), None, Some(710))
    );
    assert_eq!(
        s.secret(&email("a@x.org"), "upstream.dbx")
            .await
            .unwrap()
            .unwrap()
            .sealed,
        b"t2"
    );
    assert_eq!(
        states(s).await,
        vec![
            ("pat".into(), PendingRevoke),
            ("t1".into(), PendingRevoke),
            ("t2".into(), Current)
        ]
    );
    let switched_again = s
        .upstream_switch("dbx", "t2", &secret(b"t2", 711), ev("upstream.rotate"), 711)
        .await;
    assert!(matches!(switched_again, Err(StoreError::Conflict(_))));

    // Revocations: failures count and reschedule, success ends it once.
    s.upstream_revoke_failed("dbx", "t1", 730, "status 503", ev("upstream.revoke"), 720)
        .await
        .unwrap();
    let t1 = s
        .upstream_tokens("dbx")
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.token_id == "t1")
        .unwrap();
    assert_eq!(
        (t1.attempts, t1.next_attempt_at, t1.last_error.as_deref()),
        (1, Some(730), Some("status 503"))
    );
    s.upstream_revoke_done("dbx", "t1", Revoked, ev("upstream.revoke"), 731)
        .await
        .unwrap();
    let twice = s
        .upstream_revoke_done("dbx", "t1", Revoked, ev("upstream.revoke"), 732)
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))));

    // A discarded pending token is queued for revocation.
    s.upstream_persist_pending("dbx", "t2", &slot("t3", 2000), ev("upstream.mint"), 800)
        .await
        .unwrap();
    s.upstream_discard_pending("dbx", "t3", ev("upstream.rotate"), 801)
        .await
        .unwrap();
    assert_eq!(
        s.upstream_state("dbx").await.unwrap().unwrap().pending,
        None
    );

    // Once expired, bootstrap works again; the lapsed current is marked.
    s.upstream_install(
        &install("t4", None, 5000, 1700),
        ev("upstream.bootstrap"),
        1700,
    )
    .await
    .unwrap();
    assert_eq!(
        states(s).await,
        vec![
            ("pat".into(), PendingRevoke),
            ("t1".into(), Revoked),
            ("t2".into(), Expired),
            ("t3".into(), PendingRevoke),
            ("t4".into(), Current)
        ]
    );
    let open: Vec<String> = s
        .upstream_open_tokens("dbx")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.token_id)
        .collect();
    assert_eq!(
        open,
        vec!["t4", "t3", "pat"],
        "ended tokens are not in play"
    );

    // Ended rows older than a week are pruned as revocations finish.
    let later = 1700 + 8 * 86_400;
    s.upstream_revoke_done("dbx", "t3", Revoked, ev("upstream.revoke"), later)
        .await
        .unwrap();
    assert_eq!(
        states(s).await,
        vec![("pat".into(), PendingRevoke), ("t4".into(), Current)]
    );
}

async fn owners_are_active_with_a_live_job_or_an_unrevoked_session(f: Fixture) {
    let s = &f.store;
    owner(s).await;
    let a = email("a@x.org");
    assert!(!s.owner_active(&a, 100).await.unwrap());
    let session = IssuedToken {
        jti: "s1".into(),
        owner: a.clone(),
        subject: "a@x.org".into(),
        class: CredentialClass::Session,
        scope: String::new(),
        iat: 100,
        exp: 1000,
    };
    let api = IssuedToken {
        jti: "api1".into(),
        class: CredentialClass::Api,
        ..session.clone()
    };
    s.record_issued_token(&api, ev("token.issue"), 100)
        .await
        .unwrap();
    assert!(
        !s.owner_active(&a, 200).await.unwrap(),
        "api tokens are not activity"
    );
    s.record_issued_token(&session, ev("token.issue"), 100)
        .await
        .unwrap();
    assert!(s.owner_active(&a, 200).await.unwrap());
    assert!(!s.owner_active(&a, 1000).await.unwrap(), "expired");
    assert!(!s.owner_active(&email("b@x.org"), 200).await.unwrap());
    s.revoke(
        RevocationKind::Jti { jti: "s1".into() },
        0,
        1000,
        ev("token.revoke"),
        300,
    )
    .await
    .unwrap();
    assert!(!s.owner_active(&a, 300).await.unwrap(), "revoked");
}

async fn one_replica_at_a_time_holds_an_upstreams_lock(f: Fixture) {
    let s = &f.store;
    let other = connect(&f.url).await.unwrap();
    let held = s.upstream_lock("dbx").await.unwrap().expect("first lock");
    match s.engine() {
        Engine::Postgres => {
            assert!(
                other.upstream_lock("dbx").await.unwrap().is_none(),
                "held elsewhere"
            );
            let unrelated = other
                .upstream_lock("other")
                .await
                .unwrap()
                .expect("other upstream");
            other.upstream_unlock(unrelated).await.unwrap();
            s.upstream_unlock(held).await.unwrap();
            let next = other.upstream_lock("dbx").await.unwrap().expect("released");
            other.upstream_unlock(next).await.unwrap();
        }
        // One process owns a SQLite file: no cross-replica lock to take.
        Engine::Sqlite => {
            assert!(other.upstream_lock("dbx").await.unwrap().is_some());
            s.upstream_unlock(held).await.unwrap();
        }
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::sqlite().await).await })*
        }
        mod on_postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::postgres().await).await })*
        }
    };
}

conformance!(
    a_rotation_moves_through_its_states_one_transaction_at_a_time,
    owners_are_active_with_a_live_job_or_an_unrevoked_session,
    one_replica_at_a_time_holds_an_upstreams_lock,
);
