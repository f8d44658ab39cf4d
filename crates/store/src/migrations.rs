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
    (
        9,
        "mcp servers",
        include_str!("../migrations/sqlite/0009_mcp_servers.sql"),
        include_str!("../migrations/postgres/0009_mcp_servers.sql"),
    ),
    (
        10,
        "installation egress CA",
        include_str!("../migrations/sqlite/0010_installation_ca.sql"),
        include_str!("../migrations/postgres/0010_installation_ca.sql"),
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
        for (expected, (version, ..)) in (1..).zip(MIGRATIONS.iter()) {
            assert_eq!(*version, expected);
        }
    }

    /// The tables a migration adds, net: SQLite rebuilds a table to change
    /// a constraint (create a copy, drop, rename) where PostgreSQL alters
    /// it in place, and a rebuilt table is not a new one.
    fn new_tables(sql: &str) -> std::collections::BTreeSet<String> {
        let text: String = sql
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut created = std::collections::BTreeSet::new();
        let mut replaced = std::collections::BTreeSet::new();
        for statement in text.split(';') {
            let words: Vec<&str> = statement.split_whitespace().collect();
            match words.as_slice() {
                ["CREATE", "TABLE", name, ..] if !replaced.contains(*name) => {
                    created.insert(name.to_string());
                }
                ["DROP", "TABLE", name, ..] if !created.remove(*name) => {
                    replaced.insert(name.to_string());
                }
                ["ALTER", "TABLE", from, "RENAME", "TO", to, ..] => {
                    created.remove(*from);
                    if !replaced.contains(*to) {
                        created.insert(to.to_string());
                    }
                }
                _ => {}
            }
        }
        created
    }

    #[test]
    fn both_engines_create_the_same_tables() {
        for (version, _, sqlite, postgres) in MIGRATIONS {
            assert_eq!(
                new_tables(sqlite),
                new_tables(postgres),
                "migration {version}"
            );
        }
        let first = new_tables(MIGRATIONS[0].2);
        assert!(first.contains("owners"), "{first:?}");
    }
}
