#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! One conformance suite for the storage trait, run against SQLite and
//! PostgreSQL alike: both engines must behave identically.

use std::sync::Arc;

use gatehouse_domain::audit::{verify_chain, AuditEvent};
use gatehouse_domain::{Email, Role};
use gatehouse_store::test_support::{fresh_postgres_url, sqlite_url};
use gatehouse_store::*;

struct Fixture {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = connect(&sqlite_url(dir.path())).await.unwrap();
    Fixture {
        store,
        _dir: Some(dir),
    }
}

async fn postgres() -> Fixture {
    let store = connect(&fresh_postgres_url().await).await.unwrap();
    Fixture { store, _dir: None }
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn ev(action: &str, owner: &str) -> AuditEvent {
    let mut e = AuditEvent::new(action, "ok");
    e.owner = owner.into();
    e
}

fn new_owner(addr: &str, role: Role) -> NewOwner {
    NewOwner {
        email: email(addr),
        role,
        data_key: WrappedKey {
            wrapped: vec![1, 2, 3],
            master_kid: "m1".into(),
        },
        created_at: 10,
    }
}

fn secret(owner: &str, name: &str, sealed: &[u8]) -> SecretRecord {
    SecretRecord {
        owner: email(owner),
        name: name.into(),
        sealed: sealed.to_vec(),
        allowed_hosts: "[\"api.github.com\"]".into(),
        inject: None,
        created_at: 5,
        updated_at: 5,
    }
}

async fn claim_is_single_shot(f: Fixture) {
    let s = &f.store;
    assert_eq!(
        s.bootstrap_state().await.unwrap(),
        BootstrapState::Unclaimed { code_digest: None }
    );
    assert!(s.set_bootstrap_code(&[9; 32]).await.unwrap());
    assert_eq!(
        s.bootstrap_state().await.unwrap(),
        BootstrapState::Unclaimed {
            code_digest: Some(vec![9; 32])
        }
    );
    s.claim_bootstrap(
        &new_owner("op@x.org", Role::Operator),
        ev("bootstrap.claim", "op@x.org"),
        20,
    )
    .await
    .unwrap();
    let again = s
        .claim_bootstrap(
            &new_owner("eve@x.org", Role::Operator),
            ev("bootstrap.claim", "eve@x.org"),
            21,
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))));
    assert!(
        s.owner(&email("eve@x.org")).await.unwrap().is_none(),
        "losing claim left no owner"
    );
    assert_eq!(
        s.bootstrap_state().await.unwrap(),
        BootstrapState::Claimed {
            by: email("op@x.org")
        }
    );
    assert!(!s.set_bootstrap_code(&[1; 32]).await.unwrap());
    let op = s.owner(&email("OP@x.org")).await.unwrap().unwrap();
    assert_eq!(op.role, Role::Operator);
}

async fn concurrent_claims_have_one_winner(f: Fixture) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = f.store.clone();
        tasks.push(tokio::spawn(async move {
            let who = format!("u{i}@x.org");
            s.claim_bootstrap(
                &new_owner(&who, Role::Operator),
                ev("bootstrap.claim", &who),
                1,
            )
            .await
            .is_ok()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap() as u32;
    }
    assert_eq!(wins, 1);
}

async fn owners_are_unique_and_keep_their_data_key(f: Fixture) {
    let s = &f.store;
    s.create_owner(
        &new_owner("a@x.org", Role::Owner),
        ev("owner.create", "a@x.org"),
        1,
    )
    .await
    .unwrap();
    let dup = s
        .create_owner(
            &new_owner("A@X.org", Role::Owner),
            ev("owner.create", "a@x.org"),
            1,
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    let key = s.owner_data_key(&email("a@x.org")).await.unwrap().unwrap();
    assert_eq!(key.wrapped, vec![1, 2, 3]);
    assert!(s.owner_data_key(&email("b@x.org")).await.unwrap().is_none());
    // The failed duplicate wrote no audit record.
    let (records, _) = s.audit_all().await.unwrap();
    assert_eq!(records.len(), 1);
}

async fn login_codes_are_single_use_and_expire(f: Fixture) {
    let s = &f.store;
    let a = email("a@x.org");
    s.create_owner(
        &new_owner("a@x.org", Role::Owner),
        ev("owner.create", "a@x.org"),
        1,
    )
    .await
    .unwrap();
    s.set_login_code(&a, &[7; 32], 100).await.unwrap();
    assert_eq!(s.login_code(&a, 50).await.unwrap(), Some(vec![7; 32]));
    assert_eq!(
        s.login_code(&a, 100).await.unwrap(),
        None,
        "expired at its deadline"
    );
    assert!(!s
        .consume_login_code(&a, &[8; 32], ev("login", "a@x.org"), 50)
        .await
        .unwrap());
    assert!(s
        .consume_login_code(&a, &[7; 32], ev("login", "a@x.org"), 50)
        .await
        .unwrap());
    assert!(!s
        .consume_login_code(&a, &[7; 32], ev("login", "a@x.org"), 50)
        .await
        .unwrap());
    s.set_login_code(&a, &[6; 32], 100).await.unwrap();
    assert!(!s
        .consume_login_code(&a, &[6; 32], ev("login", "a@x.org"), 100)
        .await
        .unwrap());
}

async fn secrets_are_scoped_to_their_owner(f: Fixture) {
    let s = &f.store;
    for o in ["a@x.org", "b@x.org"] {
        s.create_owner(&new_owner(o, Role::Owner), ev("owner.create", o), 1)
            .await
            .unwrap();
    }
    assert_eq!(
        s.put_secret(
            &secret("a@x.org", "GH", b"sa"),
            ev("secret.write", "a@x.org"),
            2
        )
        .await
        .unwrap(),
        PutOutcome::Created
    );
    assert_eq!(
        s.put_secret(
            &secret("a@x.org", "GH", b"sa2"),
            ev("secret.write", "a@x.org"),
            3
        )
        .await
        .unwrap(),
        PutOutcome::Replaced
    );
    assert_eq!(
        s.put_secret(
            &secret("b@x.org", "GH", b"sb"),
            ev("secret.write", "b@x.org"),
            3
        )
        .await
        .unwrap(),
        PutOutcome::Created
    );
    assert_eq!(
        s.secret(&email("a@x.org"), "GH")
            .await
            .unwrap()
            .unwrap()
            .sealed,
        b"sa2"
    );
    assert_eq!(
        s.secret(&email("b@x.org"), "GH")
            .await
            .unwrap()
            .unwrap()
            .sealed,
        b"sb"
    );
    assert!(s.secret(&email("c@x.org"), "GH").await.unwrap().is_none());
    let listed = s.list_secrets(&email("a@x.org")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].sealed.is_empty(), "listing never carries values");
    assert!(s
        .delete_secret(&email("a@x.org"), "GH", ev("secret.delete", "a@x.org"), 4)
        .await
        .unwrap());
    assert!(!s
        .delete_secret(&email("a@x.org"), "GH", ev("secret.delete", "a@x.org"), 4)
        .await
        .unwrap());
    assert!(s.secret(&email("b@x.org"), "GH").await.unwrap().is_some());
}

async fn audit_chain_is_gapless_under_concurrency(f: Fixture) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = f.store.clone();
        tasks.push(tokio::spawn(async move {
            let owner = if i % 2 == 0 { "a@x.org" } else { "b@x.org" };
            s.append_audit(ev("test.event", owner), i).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (records, head) = f.store.audit_all().await.unwrap();
    assert_eq!(verify_chain(&records, Some(&head)), Ok(40));
    let a = f
        .store
        .audit_page(Some(&email("a@x.org")), 0, 100)
        .await
        .unwrap();
    assert_eq!(a.len(), 20);
    assert!(a.iter().all(|r| r.owner == "a@x.org"));
    let page = f.store.audit_page(None, 10, 5).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![11, 12, 13, 14, 15]
    );
}

async fn signing_keys_rotate_and_retire(f: Fixture) {
    let s = &f.store;
    let key = |kid: &str, at| SigningKeyRecord {
        kid: kid.into(),
        public_key: vec![1; 32],
        sealed_private: vec![2; 40],
        master_kid: "m1".into(),
        created_at: at,
        retired_at: None,
        verify_until: None,
    };
    s.rotate_signing_key(&key("k1", 1), 0, ev("keys.rotate", ""), 1)
        .await
        .unwrap();
    s.rotate_signing_key(&key("k2", 2), 500, ev("keys.rotate", ""), 2)
        .await
        .unwrap();
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].kid, "k1");
    assert_eq!(keys[0].verify_until, Some(500));
    assert_eq!(keys[1].retired_at, None);
    assert_eq!(s.sweep_signing_keys(400).await.unwrap(), 0);
    assert_eq!(s.sweep_signing_keys(501).await.unwrap(), 1);
    assert_eq!(s.signing_keys().await.unwrap().len(), 1);
}

async fn rewrapping_replaces_every_key_at_once(f: Fixture) {
    let s = &f.store;
    s.create_owner(
        &new_owner("a@x.org", Role::Owner),
        ev("owner.create", "a@x.org"),
        1,
    )
    .await
    .unwrap();
    let all = s.wrapped_keys().await.unwrap();
    assert_eq!(all.len(), 1);
    let fresh = vec![Rewrapped::DataKey {
        owner: email("a@x.org"),
        key: WrappedKey {
            wrapped: vec![4, 5],
            master_kid: "m2".into(),
        },
    }];
    s.replace_wrapped_keys(&fresh, ev("keys.rotate_master", ""), 2)
        .await
        .unwrap();
    assert_eq!(
        s.owner_data_key(&email("a@x.org"))
            .await
            .unwrap()
            .unwrap()
            .master_kid,
        "m2"
    );
    let ghost = vec![
        Rewrapped::DataKey {
            owner: email("a@x.org"),
            key: WrappedKey {
                wrapped: vec![6],
                master_kid: "m3".into(),
            },
        },
        Rewrapped::DataKey {
            owner: email("ghost@x.org"),
            key: WrappedKey {
                wrapped: vec![6],
                master_kid: "m3".into(),
            },
        },
    ];
    assert!(s
        .replace_wrapped_keys(&ghost, ev("keys.rotate_master", ""), 3)
        .await
        .is_err());
    assert_eq!(
        s.owner_data_key(&email("a@x.org"))
            .await
            .unwrap()
            .unwrap()
            .master_kid,
        "m2",
        "all or nothing"
    );
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
    claim_is_single_shot,
    concurrent_claims_have_one_winner,
    owners_are_unique_and_keep_their_data_key,
    login_codes_are_single_use_and_expire,
    secrets_are_scoped_to_their_owner,
    audit_chain_is_gapless_under_concurrency,
    signing_keys_rotate_and_retire,
    rewrapping_replaces_every_key_at_once,
);

#[tokio::test]
async fn unknown_url_schemes_are_refused() {
    for url in ["mysql://x/y", "file:///tmp/x", "gatehouse.db", ""] {
        let err = connect(url).await.err().expect("must refuse");
        assert!(
            err.to_string().contains("unsupported database URL scheme"),
            "{err}"
        );
    }
}
