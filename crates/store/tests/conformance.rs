#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! One conformance suite for the storage trait, run against SQLite and
//! PostgreSQL alike: both engines must behave identically.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_domain::audit::{verify_chain, AuditEvent};
use gatehouse_domain::{CredentialClass, Role};
use gatehouse_store::*;

mod common;
use common::*;

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
        put_secret(&f, &secret("a@x.org", "GH", b"sa"), 2).await,
        ActionEffect::Secret(PutOutcome::Created)
    );
    assert_eq!(
        put_secret(&f, &secret("a@x.org", "GH", b"sa2"), 3).await,
        ActionEffect::Secret(PutOutcome::Replaced)
    );
    assert_eq!(
        put_secret(&f, &secret("b@x.org", "GH", b"sb"), 3).await,
        ActionEffect::Secret(PutOutcome::Created)
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
    assert_eq!(
        delete_secret(&f, "a@x.org", "GH", 4).await,
        ActionEffect::Done
    );
    assert_eq!(
        delete_secret(&f, "a@x.org", "GH", 4).await,
        ActionEffect::Failed("no secret named GH".into())
    );
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

async fn audit_len(s: &Arc<dyn Store>) -> usize {
    s.audit_all().await.unwrap().0.len()
}

async fn agents_are_unique_per_owner(f: Fixture) {
    let s = &f.store;
    for o in ["a@x.org", "b@x.org"] {
        s.create_owner(&new_owner(o, Role::Owner), ev("owner.create", o), 1)
            .await
            .unwrap();
    }
    let (a, b) = (email("a@x.org"), email("b@x.org"));
    s.create_agent(&a, "builder", ev("agent.create", "a@x.org"), 2)
        .await
        .unwrap();
    assert!(s.agent_exists(&a, "builder").await.unwrap());
    assert!(
        !s.agent_exists(&b, "builder").await.unwrap(),
        "another owner's agent of the same name is not theirs"
    );

    let dup = s
        .create_agent(&a, "builder", ev("agent.create", "a@x.org"), 3)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    s.create_agent(&b, "builder", ev("agent.create", "b@x.org"), 4)
        .await
        .unwrap();
    assert!(s.agent_exists(&b, "builder").await.unwrap());

    assert!(!s.agent_exists(&a, "reviewer").await.unwrap());
    assert!(!s.agent_exists(&email("c@x.org"), "builder").await.unwrap());
    let orphan = s
        .create_agent(
            &email("c@x.org"),
            "builder",
            ev("agent.create", "c@x.org"),
            5,
        )
        .await;
    assert!(orphan.is_err(), "an agent needs an existing owner");
    assert!(!s.agent_exists(&email("c@x.org"), "builder").await.unwrap());

    // Two owners and two agents; the refused writes left no record.
    let (records, head) = s.audit_all().await.unwrap();
    assert_eq!(verify_chain(&records, Some(&head)), Ok(4));
}

fn issued(jti: &str, owner: &str, class: CredentialClass, iat: i64, exp: i64) -> IssuedToken {
    IssuedToken {
        jti: jti.into(),
        owner: email(owner),
        subject: format!("{jti}-subject"),
        class,
        scope: "jobs:read audit:read".into(),
        iat,
        exp,
    }
}

fn issue_ev(t: &IssuedToken) -> AuditEvent {
    let mut e = ev("token.issue", t.owner.as_str());
    e.target = t.jti.clone();
    e
}

async fn issued_tokens_are_listed_per_owner_until_they_expire(f: Fixture) {
    let s = &f.store;
    let a1 = issued("a1", "a@x.org", CredentialClass::Agent, 100, 1000);
    let a2 = issued("a2", "a@x.org", CredentialClass::Job, 200, 1200);
    let a_old = issued("a0", "a@x.org", CredentialClass::Api, 50, 150);
    let b1 = issued("b1", "b@x.org", CredentialClass::Session, 300, 2000);
    for (n, t) in [&a1, &a2, &a_old, &b1].into_iter().enumerate() {
        s.record_issued_token(t, issue_ev(t), 10 + n as i64)
            .await
            .unwrap();
        let (records, _) = s.audit_all().await.unwrap();
        assert_eq!(records.len(), n + 1, "one audit record per issued token");
        let last = records.last().unwrap();
        assert_eq!(
            (last.action.as_str(), last.target.as_str()),
            ("token.issue", t.jti.as_str())
        );
    }

    assert_eq!(s.issued_token("a2").await.unwrap(), Some(a2.clone()));
    assert_eq!(s.issued_token("b1").await.unwrap(), Some(b1.clone()));
    assert_eq!(s.issued_token("nope").await.unwrap(), None);

    assert_eq!(
        s.issued_tokens(&email("a@x.org"), 500).await.unwrap(),
        vec![a2.clone(), a1.clone()],
        "only the owner's unexpired tokens, newest first"
    );
    assert_eq!(
        s.issued_tokens(&email("B@X.org"), 500).await.unwrap(),
        vec![b1.clone()]
    );
    assert_eq!(
        s.issued_tokens(&email("a@x.org"), 1000).await.unwrap(),
        vec![a2.clone()],
        "a token is expired at its exp"
    );
    assert!(s
        .issued_tokens(&email("c@x.org"), 500)
        .await
        .unwrap()
        .is_empty());

    let dup = s.record_issued_token(&a1, issue_ev(&a1), 20).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(audit_len(s).await, 4, "a refused write left no record");
}

fn revoke_ev(target: &str) -> AuditEvent {
    let mut e = ev("token.revoke", "a@x.org");
    e.target = target.into();
    e
}

async fn revocations_are_ordered_and_incremental(f: Fixture) {
    let s = &f.store;
    let wanted = [
        (RevocationKind::Jti { jti: "j1".into() }, 300),
        (
            RevocationKind::Subject {
                owner: Some(email("a@x.org")),
                subject: "builder".into(),
            },
            200,
        ),
        (
            RevocationKind::Subject {
                owner: None,
                subject: "job-7".into(),
            },
            400,
        ),
        (
            RevocationKind::Owner {
                owner: email("b@x.org"),
            },
            100,
        ),
    ];
    let mut revoked: Vec<Revocation> = Vec::new();
    for (n, (kind, expires_at)) in wanted.iter().enumerate() {
        let not_before = 40 + n as i64;
        let r = s
            .revoke(
                kind.clone(),
                not_before,
                *expires_at,
                revoke_ev(&format!("r{n}")),
                50,
            )
            .await
            .unwrap();
        assert_eq!(&r.kind, kind);
        assert_eq!((r.not_before, r.expires_at), (not_before, *expires_at));
        if let Some(prev) = revoked.last() {
            assert!(r.id > prev.id, "ids increase: {} then {}", prev.id, r.id);
        }
        assert_eq!(audit_len(s).await, n + 1, "one audit record per revocation");
        revoked.push(r);
    }

    // Every kind reads back exactly as written, in id order.
    assert_eq!(s.revocations_since(0).await.unwrap(), revoked);
    assert_eq!(
        s.revocations_since(revoked[1].id).await.unwrap(),
        revoked[2..].to_vec()
    );
    assert!(s.revocations_since(revoked[3].id).await.unwrap().is_empty());

    // Live at 200: the one expiring at 200 still counts, the one at 100 not.
    assert_eq!(
        s.live_revocations(200).await.unwrap(),
        revoked[..3].to_vec()
    );

    let short = issued("t-short", "a@x.org", CredentialClass::Agent, 50, 150);
    let long = issued("t-long", "a@x.org", CredentialClass::Agent, 50, 500);
    for t in [&short, &long] {
        s.record_issued_token(t, issue_ev(t), 60).await.unwrap();
    }
    // Two revocations (expiring 100 and 200) and one token (150) are gone.
    assert_eq!(s.sweep_revocations(250).await.unwrap(), 3);
    assert_eq!(s.sweep_revocations(250).await.unwrap(), 0);
    assert_eq!(
        s.revocations_since(0).await.unwrap(),
        vec![revoked[0].clone(), revoked[2].clone()]
    );
    assert_eq!(s.issued_token("t-short").await.unwrap(), None);
    assert_eq!(s.issued_token("t-long").await.unwrap(), Some(long));

    // The swept row had the highest id; a new one must not reuse it, or a
    // reader already past it would never see the new revocation.
    let next = s
        .revoke(
            RevocationKind::Jti { jti: "j2".into() },
            0,
            900,
            revoke_ev("r4"),
            260,
        )
        .await
        .unwrap();
    assert!(next.id > revoked[3].id, "{} reused", next.id);
    assert_eq!(
        s.revocations_since(revoked[3].id).await.unwrap(),
        vec![next]
    );

    let (records, head) = s.audit_all().await.unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.action == "token.revoke")
            .count(),
        5
    );
    assert_eq!(verify_chain(&records, Some(&head)), Ok(7));
}

async fn concurrent_revocations_get_distinct_ids_in_commit_order(f: Fixture) {
    const WRITERS: usize = 20;
    // An incremental reader polls while the writers run: if ids were not
    // handed out in commit order it would move past an id that commits
    // later, and never see that revocation.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (s, done) = (f.store.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen: Vec<i64> = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let cursor = seen.last().copied().unwrap_or(0);
                seen.extend(
                    s.revocations_since(cursor)
                        .await
                        .unwrap()
                        .iter()
                        .map(|r| r.id),
                );
                if finished {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        let s = f.store.clone();
        writers.push(tokio::spawn(async move {
            s.revoke(
                RevocationKind::Jti {
                    jti: format!("j{i}"),
                },
                0,
                1000,
                revoke_ev(&format!("j{i}")),
                i as i64,
            )
            .await
            .unwrap()
        }));
    }
    let mut written = BTreeSet::new();
    for w in writers {
        assert!(written.insert(w.await.unwrap().id), "ids are distinct");
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();

    let all: Vec<i64> = s_ids(&f.store, 0).await;
    assert_eq!(all.len(), WRITERS);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    assert_eq!(all.iter().copied().collect::<BTreeSet<_>>(), written);
    assert_eq!(seen, all, "the incremental reader missed a revocation");
    for (k, id) in all.iter().enumerate() {
        assert_eq!(s_ids(&f.store, *id).await, all[k + 1..].to_vec());
    }
    let (records, head) = f.store.audit_all().await.unwrap();
    assert_eq!(verify_chain(&records, Some(&head)), Ok(WRITERS as u64));
}

async fn s_ids(s: &Arc<dyn Store>, after: i64) -> Vec<i64> {
    s.revocations_since(after)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect()
}

/// The next message of a wake-up channel, if one arrives `within`.
async fn next_wakeup<T>(rx: &mut tokio::sync::mpsc::Receiver<T>, within: Duration) -> Option<T> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

async fn drain<T>(rx: &mut tokio::sync::mpsc::Receiver<T>) {
    while next_wakeup(rx, Duration::from_millis(200)).await.is_some() {}
}

async fn revocation_wakeups_arrive_on_postgres_only(f: Fixture) {
    let s = &f.store;
    match s.engine() {
        Engine::Sqlite => assert!(s.revocation_wakeups().await.is_none()),
        Engine::Postgres => {
            let mut rx = s.revocation_wakeups().await.expect("PostgreSQL pushes");
            // The listener announces itself (a resync wake-up) once it is
            // listening: wait for it before writing, then drain.
            let _ = next_wakeup(&mut rx, Duration::from_secs(5)).await;
            drain(&mut rx).await;
            let kinds = [
                RevocationKind::Jti { jti: "j1".into() },
                RevocationKind::Subject {
                    owner: Some(email("a@x.org")),
                    subject: "builder".into(),
                },
                RevocationKind::Subject {
                    owner: None,
                    subject: "job-7".into(),
                },
                RevocationKind::Owner {
                    owner: email("b@x.org"),
                },
            ];
            for (n, kind) in kinds.into_iter().enumerate() {
                let written = s
                    .revoke(kind, 5, 1000, revoke_ev(&format!("r{n}")), 1)
                    .await
                    .unwrap();
                let pushed = next_wakeup(&mut rx, Duration::from_secs(2)).await;
                assert_eq!(
                    pushed,
                    Some(Some(written)),
                    "a revocation is pushed, as written, within 2 s"
                );
            }

            // A revocation written by another replica reaches this one too.
            drain(&mut rx).await;
            let replica = connect(&f.url).await.unwrap();
            let written = replica
                .revoke(
                    RevocationKind::Jti { jti: "j2".into() },
                    0,
                    1000,
                    revoke_ev("j2"),
                    2,
                )
                .await
                .unwrap();
            assert_eq!(
                next_wakeup(&mut rx, Duration::from_secs(2)).await,
                Some(Some(written)),
                "another replica's revocation is pushed within 2 s"
            );
        }
    }
}

async fn the_gate_key_is_handed_out_once_per_store(f: Fixture) {
    assert!(
        f.store.take_gate_key().is_none(),
        "the fixture, like the API's gate, took it"
    );
    let other = connect(&f.url).await.unwrap();
    assert!(other.take_gate_key().is_some());
    assert!(other.take_gate_key().is_none());
}

conformance!(
    the_gate_key_is_handed_out_once_per_store,
    claim_is_single_shot,
    concurrent_claims_have_one_winner,
    owners_are_unique_and_keep_their_data_key,
    login_codes_are_single_use_and_expire,
    secrets_are_scoped_to_their_owner,
    audit_chain_is_gapless_under_concurrency,
    signing_keys_rotate_and_retire,
    rewrapping_replaces_every_key_at_once,
    agents_are_unique_per_owner,
    issued_tokens_are_listed_per_owner_until_they_expire,
    revocations_are_ordered_and_incremental,
    concurrent_revocations_get_distinct_ids_in_commit_order,
    revocation_wakeups_arrive_on_postgres_only,
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
