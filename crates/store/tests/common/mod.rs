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
}

pub async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    let store = connect(&url).await.unwrap();
    Fixture {
        store,
        url,
        _dir: Some(dir),
    }
}

pub async fn postgres() -> Fixture {
    let url = fresh_postgres_url().await;
    let store = connect(&url).await.unwrap();
    Fixture {
        store,
        url,
        _dir: None,
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
