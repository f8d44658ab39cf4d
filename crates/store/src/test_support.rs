//! Fresh stores for tests, on both engines.
//!
//! PostgreSQL comes from `GATEHOUSE_TEST_DATABASE_URL` (default: the local
//! server on 127.0.0.1:5432). Each call creates its own database, so tests
//! run in parallel without seeing each other. A database that cannot be
//! reached fails the test: there is no silent skip.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const PREFIX: &str = "gh_t_";

pub fn postgres_admin_url() -> String {
    match std::env::var("GATEHOUSE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but GATEHOUSE_TEST_DATABASE_URL is not set: PostgreSQL tests cannot run"
            )
        }
        _ => DEFAULT_PG.to_string(),
    }
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let root = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

/// Creates an empty database and returns its URL. Databases this helper
/// created more than an hour ago are dropped on the way.
pub async fn fresh_postgres_url() -> String {
    use sqlx::{Connection, Row};
    let admin_url = postgres_admin_url();
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL at GATEHOUSE_TEST_DATABASE_URL is unreachable: {e}")
        });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stale: Vec<String> =
        sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE 'gh_t_%'")
            .fetch_all(&mut admin)
            .await
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.try_get::<String, _>("datname").ok())
                    .collect()
            })
            .unwrap_or_default();
    for name in stale {
        let created: u64 = name
            .trim_start_matches(PREFIX)
            .split('_')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > 3600 {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut admin)
                .await;
        }
    }
    let suffix = gatehouse_domain::codes::random_array::<6>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let db = format!("{PREFIX}{now}_{suffix}");
    sqlx::query(&format!("CREATE DATABASE \"{db}\""))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
    with_database(&admin_url, &db)
}

pub fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("gatehouse.db").display())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_swapped_in_the_url() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
