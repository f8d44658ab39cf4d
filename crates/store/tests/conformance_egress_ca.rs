#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The installation's egress CA rows, on SQLite and PostgreSQL alike:
//! created once whoever races, rotated one generation at a time, re-wrapped
//! with every other key by a master-key rotation.

use gatehouse_store::*;

mod common;
use common::*;

fn ca(generation: i64, tag: &str) -> EgressCaRecord {
    EgressCaRecord {
        generation,
        cert_pem: format!("cert-{tag}"),
        cross_pem: (generation > 1).then(|| format!("cross-{tag}")),
        sealed_key: tag.as_bytes().to_vec(),
        master_kid: "m1".into(),
        created_at: 10 * generation,
        retired_at: None,
        trust_until: None,
    }
}

async fn the_first_ca_is_created_once_whoever_races(f: Fixture) {
    let mut tasks = Vec::new();
    // Separate stores on one database: the replicas' view.
    for i in 0..6 {
        let store = connect(&f.url).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let won = store
                .create_egress_ca(&ca(1, &format!("r{i}")), ev("egress.ca_create", ""), 5)
                .await
                .unwrap();
            let rows = store.egress_cas().await.unwrap();
            (won, rows[0].cert_pem.clone())
        }));
    }
    let mut winners = Vec::new();
    let mut seen = Vec::new();
    for t in tasks {
        let (won, cert) = t.await.unwrap();
        if won {
            winners.push(cert.clone());
        }
        seen.push(cert);
    }
    assert_eq!(winners.len(), 1, "exactly one replica creates the CA");
    assert!(
        seen.iter().all(|c| *c == winners[0]),
        "every replica reads the winner's CA back: {seen:?}"
    );
    let rows = f.store.egress_cas().await.unwrap();
    assert_eq!(rows.len(), 1);
    let created = f
        .store
        .audit_all()
        .await
        .unwrap()
        .0
        .iter()
        .filter(|r| r.action == "egress.ca_create")
        .count();
    assert_eq!(created, 1, "only the winner is audited");
    assert!(f
        .store
        .create_egress_ca(&ca(2, "x"), ev("egress.ca_create", ""), 6)
        .await
        .is_err());
}

async fn rotation_adds_the_next_generation_and_retires_the_signer(f: Fixture) {
    let s = &f.store;
    assert!(s.egress_cas().await.unwrap().is_empty());
    assert!(s
        .create_egress_ca(&ca(1, "a"), ev("egress.ca_create", ""), 5)
        .await
        .unwrap());
    s.rotate_egress_ca(&ca(2, "b"), 100, ev("keys.rotate_ca", ""), 20)
        .await
        .unwrap();
    let rows = s.egress_cas().await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].generation, 2, "newest first");
    assert_eq!(rows[0].retired_at, None);
    assert_eq!(rows[0].cross_pem.as_deref(), Some("cross-b"));
    assert_eq!(rows[1].generation, 1);
    assert_eq!(rows[1].retired_at, Some(20));
    assert_eq!(rows[1].trust_until, Some(100));
    // A rotation computed from a stale view loses.
    let stale = s
        .rotate_egress_ca(&ca(2, "c"), 200, ev("keys.rotate_ca", ""), 30)
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(s.egress_cas().await.unwrap()[0].cert_pem, "cert-b");
    // The next rotation after generation 1's overlap drops it.
    s.rotate_egress_ca(&ca(3, "c"), 300, ev("keys.rotate_ca", ""), 150)
        .await
        .unwrap();
    let rows = s.egress_cas().await.unwrap();
    let gens: Vec<i64> = rows.iter().map(|r| r.generation).collect();
    assert_eq!(gens, vec![3, 2]);
    assert_eq!(rows[1].trust_until, Some(300));
}

async fn concurrent_rotations_have_one_winner(f: Fixture) {
    assert!(f
        .store
        .create_egress_ca(&ca(1, "a"), ev("egress.ca_create", ""), 5)
        .await
        .unwrap());
    let mut tasks = Vec::new();
    for i in 0..4 {
        let store = connect(&f.url).await.unwrap();
        tasks.push(tokio::spawn(async move {
            store
                .rotate_egress_ca(&ca(2, &format!("r{i}")), 100, ev("keys.rotate_ca", ""), 20)
                .await
                .is_ok()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += u32::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(f.store.egress_cas().await.unwrap().len(), 2);
}

async fn master_key_rotation_rewraps_the_ca_keys(f: Fixture) {
    let s = &f.store;
    s.create_egress_ca(&ca(1, "a"), ev("egress.ca_create", ""), 5)
        .await
        .unwrap();
    let listed: Vec<Rewrapped> = s
        .wrapped_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| matches!(k, Rewrapped::EgressCa { .. }))
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].master_kid(), "m1");
    let Rewrapped::EgressCa {
        generation,
        cert_pem,
        ..
    } = listed[0].clone()
    else {
        panic!("not a CA key")
    };
    let fresh = vec![Rewrapped::EgressCa {
        generation,
        cert_pem: cert_pem.clone(),
        sealed_key: b"rewrapped".to_vec(),
        master_kid: "m2".into(),
    }];
    s.replace_wrapped_keys(&fresh, ev("keys.rotate_master", ""), 6)
        .await
        .unwrap();
    let row = &s.egress_cas().await.unwrap()[0];
    assert_eq!(row.master_kid, "m2");
    assert_eq!(row.sealed_key, b"rewrapped");
    // A CA replaced meanwhile (another certificate) is not overwritten.
    let other = vec![Rewrapped::EgressCa {
        generation,
        cert_pem: "another".into(),
        sealed_key: b"x".to_vec(),
        master_kid: "m3".into(),
    }];
    assert!(s
        .replace_wrapped_keys(&other, ev("keys.rotate_master", ""), 7)
        .await
        .is_err());
    assert_eq!(s.egress_cas().await.unwrap()[0].master_kid, "m2");
}

conformance!(
    the_first_ca_is_created_once_whoever_races,
    rotation_adds_the_next_generation_and_retires_the_signer,
    concurrent_rotations_have_one_winner,
    master_key_rotation_rewraps_the_ca_keys,
);
