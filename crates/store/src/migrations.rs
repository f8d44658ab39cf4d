//! Numbered migrations, one folder per engine, kept in lockstep: version N
//! exists for both or for neither (a test checks). Applied through sqlx's
//! migrator, which records versions and checksums in `_sqlx_migrations`
//! and refuses a database whose applied migration was edited afterwards.

use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// (version, description, sqlite SQL, postgres SQL)
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../migrations/sqlite/0001_foundation.sql"),
        include_str!("../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "tokens and revocation",
        include_str!("../migrations/sqlite/0002_tokens_and_revocation.sql"),
        include_str!("../migrations/postgres/0002_tokens_and_revocation.sql"),
    ),
    (
        3,
        "jobs",
        include_str!("../migrations/sqlite/0003_jobs.sql"),
        include_str!("../migrations/postgres/0003_jobs.sql"),
    ),
    (
        4,
        "hooks",
        include_str!("../migrations/sqlite/0004_hooks.sql"),
        include_str!("../migrations/postgres/0004_hooks.sql"),
    ),
    (
        5,
        "approvals",
        include_str!("../migrations/sqlite/0005_approvals.sql"),
        include_str!("../migrations/postgres/0005_approvals.sql"),
    ),
    (
        6,
        "upstreams",
        include_str!("../migrations/sqlite/0006_upstreams.sql"),
        include_str!("../migrations/postgres/0006_upstreams.sql"),
    ),
    (
        7,
        "agent egress policy",
        include_str!("../migrations/sqlite/0007_agent_egress.sql"),
        include_str!("../migrations/postgres/0007_agent_egress.sql"),
    ),
    (
        8,
        "agent secret ceilings and claimed executions",
        include_str!("../migrations/sqlite/0008_gates.sql"),
        include_str!("../migrations/postgres/0008_gates.sql"),
    ),
];

#[derive(Clone, Copy)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

pub(crate) fn migrator(dialect: Dialect) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sqlite, postgres)| {
            let sql = match dialect {
                Dialect::Sqlite => sqlite,
                Dialect::Postgres => postgres,
            };
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_one_by_one() {
        for (i, (version, ..)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
        }
    }

    #[test]
    fn both_engines_create_the_same_tables() {
        fn tables(sql: &str) -> Vec<String> {
            sql.split("CREATE TABLE ")
                .skip(1)
                .filter_map(|s| s.split_whitespace().next().map(str::to_string))
                .collect()
        }
        for (version, _, sqlite, postgres) in MIGRATIONS {
            assert_eq!(tables(sqlite), tables(postgres), "migration {version}");
        }
    }
}
