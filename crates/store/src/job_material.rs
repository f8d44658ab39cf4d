//! What a job's credentials resolve from, read in one round trip: the job,
//! its owner's wrapped data key, its agent's egress policy, and per grant
//! its placeholder and its secret's **current** row. Both the credential
//! route and the egress proxy resolve from this (SPEC §5, §6: a
//! placeholder follows its secret), so neither keeps a copy of a secret's
//! binding that could go stale.
//!
//! The query yields one flat row per grant and placeholder; [`assemble`]
//! folds them. A secret granted twice in placeholder mode has two
//! placeholders, which the schema ties to the secret, not the grant: the
//! grants of that secret (in `env_var` order) take its placeholders in
//! order, one each, so each placeholder is used once.

use std::collections::HashMap;

use gatehouse_domain::clock::UnixTime;

use crate::model::{Grant, GrantMode, JobRecord, WrappedKey};

/// A granted secret's row as it is now.
#[derive(Clone)]
pub struct SecretMaterial {
    pub sealed: Vec<u8>,
    /// JSON array of host patterns.
    pub allowed_hosts: String,
    /// JSON object `{"header","format"}`, if any.
    pub inject: Option<String>,
}

/// One grant with its placeholder (placeholder grants) and its secret's
/// current row: `None` when the secret was deleted (a secret of that name
/// created after the job is not the one granted, so it counts as gone).
#[derive(Clone)]
pub struct GrantMaterial {
    pub grant: Grant,
    pub placeholder: Option<(String, UnixTime)>,
    pub secret: Option<SecretMaterial>,
}

/// A job (deleted or not: the caller decides) and its grants' material.
#[derive(Clone)]
pub struct JobMaterial {
    /// `grants` filled from the grant rows.
    pub job: JobRecord,
    pub data_key: Option<WrappedKey>,
    /// The agent's egress policy (JSON array), when it has one.
    pub agent_allow_hosts: Option<String>,
    /// In `env_var` order.
    pub grants: Vec<GrantMaterial>,
}

/// One row of the query: a grant (absent for a job without grants), one
/// of its secret's placeholders (if any) and the secret's row (if any).
pub(crate) struct MaterialRow {
    pub grant: Option<Grant>,
    pub placeholder: Option<(String, UnixTime)>,
    pub secret: Option<SecretMaterial>,
}

/// Folds rows ordered by `env_var`, then placeholder.
pub(crate) fn assemble(
    mut job: JobRecord,
    data_key: Option<WrappedKey>,
    agent_allow_hosts: Option<String>,
    rows: Vec<MaterialRow>,
) -> JobMaterial {
    // Per grant (env_var), its secret row and every placeholder of its
    // secret, in row order.
    type Placeholders = Vec<(String, UnixTime)>;
    let mut grouped: Vec<(Grant, Option<SecretMaterial>, Placeholders)> = Vec::new();
    for row in rows {
        let Some(grant) = row.grant else { continue };
        match grouped.last_mut() {
            Some((g, _, phs)) if g.env_var == grant.env_var => {
                if let Some(p) = row.placeholder {
                    if !phs.contains(&p) {
                        phs.push(p);
                    }
                }
            }
            _ => grouped.push((grant, row.secret, row.placeholder.into_iter().collect())),
        }
    }
    let mut taken: HashMap<String, usize> = HashMap::new();
    let grants: Vec<GrantMaterial> = grouped
        .into_iter()
        .map(|(grant, secret, phs)| {
            let placeholder = match grant.mode {
                GrantMode::Placeholder => {
                    let k = taken.entry(grant.secret.clone()).or_insert(0);
                    let p = phs.get(*k).cloned();
                    *k += 1;
                    p
                }
                GrantMode::Value => None,
            };
            GrantMaterial {
                grant,
                placeholder,
                secret,
            }
        })
        .collect();
    job.grants = grants.iter().map(|g| g.grant.clone()).collect();
    JobMaterial {
        job,
        data_key,
        agent_allow_hosts,
        grants,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_domain::Email;

    fn job() -> JobRecord {
        JobRecord {
            id: "j".into(),
            owner: Email::parse("o@x.org").unwrap(),
            agent: "bot".into(),
            created_by: "o@x.org".into(),
            token_jti: "t".into(),
            packages: "[]".into(),
            allow_hosts: "[]".into(),
            created_at: 1,
            expires_at: 2,
            deleted_at: None,
            grants: vec![],
            grant_count: 0,
        }
    }

    fn row(env: &str, secret: &str, mode: GrantMode, ph: Option<&str>) -> MaterialRow {
        MaterialRow {
            grant: Some(Grant {
                env_var: env.into(),
                secret: secret.into(),
                mode,
            }),
            placeholder: ph.map(|p| (p.to_string(), 9)),
            secret: Some(SecretMaterial {
                sealed: vec![1],
                allowed_hosts: "[]".into(),
                inject: None,
            }),
        }
    }

    #[test]
    fn a_secret_granted_twice_gives_each_grant_its_own_placeholder() {
        use GrantMode::*;
        // The join pairs each grant of `s` with both of its placeholders.
        let rows = vec![
            row("A", "s", Placeholder, Some("p1")),
            row("A", "s", Placeholder, Some("p2")),
            row("B", "t", Value, None),
            row("C", "s", Placeholder, Some("p1")),
            row("C", "s", Placeholder, Some("p2")),
        ];
        let m = assemble(job(), None, None, rows);
        let got: Vec<_> = m
            .grants
            .iter()
            .map(|g| {
                (
                    g.grant.env_var.as_str(),
                    g.placeholder.as_ref().map(|p| p.0.as_str()),
                )
            })
            .collect();
        assert_eq!(got, vec![("A", Some("p1")), ("B", None), ("C", Some("p2"))]);
        assert_eq!(m.job.grants.len(), 3);
    }

    #[test]
    fn a_job_without_grants_has_one_row_and_no_material() {
        let rows = vec![MaterialRow {
            grant: None,
            placeholder: None,
            secret: None,
        }];
        let m = assemble(job(), None, None, rows);
        assert!(m.grants.is_empty() && m.job.grants.is_empty());
    }
}
