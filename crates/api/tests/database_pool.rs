//! `database.max_connections` on PostgreSQL, measured through a real
//! server: under a burst of concurrent store-backed requests a replica
//! holds at most its pool plus the two `LISTEN` connections, and even a
//! pool of one serves while both listeners hold theirs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::Method;
use sqlx::Connection;
use support::{server_with, Engine, TestServer};

/// Concurrent `GET /v1/secrets` (a token check and a store read each);
/// every one must answer 200.
async fn burst(s: &TestServer, token: &str, n: usize) {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let client = s.client.clone();
        let url = format!("{}/v1/secrets", s.url);
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
}

/// Connections to the server's database, other than the one asking.
async fn connections(s: &TestServer) -> i64 {
    let mut conn = sqlx::PgConnection::connect(&s.database_url).await.unwrap();
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_replica_holds_at_most_its_pool_plus_two_listeners_under_load() {
    let s = server_with(
        Engine::Postgres,
        &[("GATEHOUSE_DATABASE_MAX_CONNECTIONS", "3")],
    )
    .await;
    let op = s.claim("op@x.org").await;
    for _ in 0..3 {
        burst(&s, &op, 40).await;
        let open = connections(&s).await;
        assert!((2..=3 + 2).contains(&open), "{open} connections");
    }
}

#[tokio::test]
async fn a_pool_of_one_serves_while_both_listeners_hold_theirs() {
    let s = server_with(
        Engine::Postgres,
        &[("GATEHOUSE_DATABASE_MAX_CONNECTIONS", "1")],
    )
    .await;
    let op = s.claim("op@x.org").await;
    burst(&s, &op, 20).await;
    let (status, _) = s.json(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, 200);
    assert!(connections(&s).await <= 1 + 2);
}
