//! Fixtures shared by the conformance suites: each test runs once on
//! SQLite and once on PostgreSQL.
#![allow(dead_code)]

use std::sync::Arc;

use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::{Email, Role};
use gatehouse_store::test_support::{fresh_postgres_url, sqlite_url};
use gatehouse_store::*;

pub struct Fixture {
    pub store: Arc<dyn Store>,
    /// The database URL, so a test can open a second replica on it.
    pub url: String,
    pub _dir: Option<tempfile::TempDir>,
    /// The store's one gate key, taken as the API's gate would.
    pub key: Arc<GateKey>,
}

pub async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let store = connect(&url).await.unwrap();
    let key = Arc::new(store.take_gate_key().unwrap());
    Fixture {
        store,
        url,
        _dir: Some(dir),
        key,
    }
}

pub async fn postgres() -> Fixture {
    let url = fresh_postgres_url().await;
    let store = connect(&url).await.unwrap();
    let key = Arc::new(store.take_gate_key().unwrap());
    Fixture {
        store,
        url,
        _dir: None,
        key,
    }
}

pub fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

pub fn ev(action: &str, owner: &str) -> AuditEvent {
    let mut e = AuditEvent::new(action, "ok");
    e.owner = owner.into();
    e
}

pub fn new_owner(addr: &str, role: Role) -> NewOwner {
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

pub fn secret(owner: &str, name: &str, sealed: &[u8]) -> SecretRecord {
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

/// A secret write, the one way there is: a gated action.
pub async fn put_secret(f: &Fixture, s: &SecretRecord, now: i64) -> ActionEffect {
    match f
        .store
        .run_gated(
            &f.key,
            &GatedAction::PutSecret(s.clone()),
            None,
            vec![ev("secret.write", s.owner.as_str())],
            now,
        )
        .await
        .unwrap()
    {
        RunResult::Ran(effect) => effect,
        RunResult::NotApproved => panic!("a direct run needs no approval"),
    }
}

/// A secret delete, as a gated action.
pub async fn delete_secret(f: &Fixture, owner: &str, name: &str, now: i64) -> ActionEffect {
    let action = GatedAction::DeleteSecret {
        owner: email(owner),
        name: name.into(),
    };
    match f
        .store
        .run_gated(&f.key, &action, None, vec![ev("secret.delete", owner)], now)
        .await
        .unwrap()
    {
        RunResult::Ran(effect) => effect,
        RunResult::NotApproved => panic!("a direct run needs no approval"),
    }
}

#[macro_export]
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
