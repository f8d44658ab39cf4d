//! The one job-credential resolver (SPEC §5, §6): what a job token may
//! use, read from the store for each request. `GET /v1/job/credentials`
//! and the egress proxy's view of a job both call [`resolve`], so they
//! follow the same rules and fail the same way:
//!
//! - the job is the token's: the owner recorded for the job at creation is
//!   the token's owner, the job is live and its recorded token is this one;
//! - every grant the job was created with is still there;
//! - the owner (and so their data key) exists and the key opens;
//! - every granted secret exists, is the secret that existed when the job
//!   was created (a new secret reusing a deleted one's name is not), and
//!   its value opens and is text;
//! - every placeholder grant has its placeholder, not expired.
//!
//! Any failure refuses the whole job: the route answers the uniform 403,
//! the proxy refuses the request (never a view with a grant left out).
//! Host bindings, `inject` rules and values are the secrets' current rows
//! (one store round trip), so a placeholder follows its secret: a
//! replaced secret's new value and binding apply from the next request, a
//! deleted secret's placeholders are dead. The proxy keeps a resolved view
//! only while the store's binding epoch stands (`egress_views.rs`).

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::crypto::{self, Purpose};
use gatehouse_domain::{Email, SecretBytes};
use gatehouse_store::{GrantMode, JobMaterial, StoreError};

use crate::keys::MasterKeys;
use crate::state::Inner;

/// A verified job token: which job, for which owner, with which token id.
#[derive(Debug, Clone, Copy)]
pub struct JobToken<'a> {
    pub job_id: &'a str,
    pub owner: &'a Email,
    pub jti: &'a str,
}

/// A secret's `inject` rule: `header: format`, `{value}` replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectRule {
    pub header: String,
    pub format: String,
}

/// One grant, resolved against its secret's current row.
pub struct ResolvedGrant {
    pub env_var: String,
    pub secret: String,
    pub mode: GrantMode,
    /// Placeholder grants: the placeholder and its expiry (in the future).
    pub placeholder: Option<(String, UnixTime)>,
    /// The real value (text).
    pub value: SecretBytes,
    /// The secret's host patterns, now.
    pub allowed_hosts: Vec<String>,
    pub inject: Option<InjectRule>,
}

/// Everything a job may use.
pub struct Resolved {
    /// The job's own `egress.allow_hosts`.
    pub allow_hosts: Vec<String>,
    /// The agent's egress policy, when it has one.
    pub agent_allow_hosts: Option<Vec<String>>,
    /// In `env_var` order.
    pub grants: Vec<ResolvedGrant>,
}

impl Resolved {
    /// What the job receives at `GET /v1/job/credentials`: `(env_var,
    /// placeholder)` for placeholder grants, `(env_var, value)` for value
    /// grants.
    pub fn env(&self) -> Vec<(String, String)> {
        self.grants
            .iter()
            .map(|g| {
                let shown = match &g.placeholder {
                    Some((placeholder, _)) => placeholder.clone(),
                    None => g.value.expose_str().unwrap_or_default().to_string(),
                };
                (g.env_var.clone(), shown)
            })
            .collect()
    }
}

/// Why a job's credentials did not resolve.
#[derive(Debug)]
pub enum Unresolved {
    /// A rule said no: a bare reason for the server log. Callers answer
    /// all of them alike.
    Denied(&'static str),
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for Unresolved {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

fn hosts(json: &str) -> Result<Vec<String>, Unresolved> {
    serde_json::from_str(json).map_err(|_| Unresolved::Denied("stored host list unreadable"))
}

fn inject_rule(json: &str) -> Result<InjectRule, Unresolved> {
    let bad = || Unresolved::Denied("stored inject rule unreadable");
    let v: serde_json::Value = serde_json::from_str(json).map_err(|_| bad())?;
    let field = |name: &str| {
        v.get(name)
            .and_then(|f| f.as_str())
            .map(str::to_string)
            .ok_or_else(bad)
    };
    Ok(InjectRule {
        header: field("header")?,
        format: field("format")?,
    })
}

/// Resolves everything `token`'s job may use, under the rules above: the
/// owner recorded for the job, then one store read, then [`open`].
pub async fn resolve(st: &Inner, token: JobToken<'_>) -> Result<Resolved, Unresolved> {
    let owner = st
        .owner_cache
        .resolve(st.store.as_ref(), token.job_id)
        .await?
        .ok_or(Unresolved::Denied("job unknown"))?;
    if owner != *token.owner {
        return Err(Unresolved::Denied("token owner is not the job's owner"));
    }
    let material = st
        .store
        .job_material(token.job_id, &owner)
        .await?
        .ok_or(Unresolved::Denied("job unknown"))?;
    open(&st.master, token, &material, st.now())
}

/// The rules over what the store read for `token`'s job: no I/O.
pub fn open(
    master: &MasterKeys,
    token: JobToken<'_>,
    material: &JobMaterial,
    now: UnixTime,
) -> Result<Resolved, Unresolved> {
    let job = &material.job;
    let owner = &job.owner;
    if owner != token.owner || job.id != token.job_id {
        return Err(Unresolved::Denied("token owner is not the job's owner"));
    }
    if job.deleted_at.is_some() || job.token_jti != token.jti {
        return Err(Unresolved::Denied("job deleted or token not the job's"));
    }
    if material.grants.len() as i64 != job.grant_count {
        return Err(Unresolved::Denied("grant missing"));
    }
    let wrapped = material
        .data_key
        .as_ref()
        .ok_or(Unresolved::Denied("owner unknown"))?;
    let key = master
        .unwrap_data_key(owner, wrapped)
        .map_err(|_| Unresolved::Denied("data key does not open"))?;
    let mut grants = Vec::with_capacity(material.grants.len());
    for m in &material.grants {
        let secret = m
            .secret
            .as_ref()
            .ok_or(Unresolved::Denied("secret missing"))?;
        let placeholder = match m.grant.mode {
            GrantMode::Placeholder => {
                let (placeholder, expires_at) = m
                    .placeholder
                    .clone()
                    .ok_or(Unresolved::Denied("placeholder missing"))?;
                if expires_at <= now {
                    return Err(Unresolved::Denied("placeholder expired"));
                }
                Some((placeholder, expires_at))
            }
            GrantMode::Value => None,
        };
        let value = crypto::open(
            &key,
            Purpose::SecretValue,
            &[owner.as_str(), &m.grant.secret],
            &secret.sealed,
        )
        .map_err(|_| Unresolved::Denied("value does not decrypt"))?;
        if value.expose_str().is_none() {
            return Err(Unresolved::Denied("value is not text"));
        }
        grants.push(ResolvedGrant {
            env_var: m.grant.env_var.clone(),
            secret: m.grant.secret.clone(),
            mode: m.grant.mode,
            placeholder,
            value,
            allowed_hosts: hosts(&secret.allowed_hosts)?,
            inject: secret.inject.as_deref().map(inject_rule).transpose()?,
        });
    }
    Ok(Resolved {
        allow_hosts: hosts(&job.allow_hosts)?,
        agent_allow_hosts: material
            .agent_allow_hosts
            .as_deref()
            .map(hosts)
            .transpose()?,
        grants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_domain::crypto::SymmetricKey;
    use gatehouse_store::JobRecord;

    fn denied(r: Result<Resolved, Unresolved>) -> bool {
        matches!(r, Err(Unresolved::Denied(_)))
    }

    /// The job-level rules, each broken on its own while the others hold
    /// (the tokens the server mints never break one alone, so only here).
    #[test]
    fn each_job_level_rule_refuses_on_its_own() {
        let master = MasterKeys::new(SymmetricKey::generate(), vec![]);
        let alice = Email::parse("alice@x.org").unwrap();
        let bob = Email::parse("bob@x.org").unwrap();
        let material = JobMaterial {
            job: JobRecord {
                id: "j1".into(),
                owner: alice.clone(),
                agent: "bot".into(),
                created_by: "alice@x.org".into(),
                token_jti: "jti1".into(),
                packages: "[]".into(),
                allow_hosts: "[]".into(),
                created_at: 0,
                expires_at: 100,
                deleted_at: None,
                grants: vec![],
                grant_count: 0,
            },
            data_key: Some(master.wrap_data_key(&alice, &SymmetricKey::generate())),
            agent_allow_hosts: None,
            grants: vec![],
        };
        let token = |owner, job_id, jti| JobToken { job_id, owner, jti };
        assert!(open(&master, token(&alice, "j1", "jti1"), &material, 10).is_ok());
        assert!(denied(open(
            &master,
            token(&bob, "j1", "jti1"),
            &material,
            10
        )));
        assert!(denied(open(
            &master,
            token(&alice, "j2", "jti1"),
            &material,
            10
        )));
        assert!(denied(open(
            &master,
            token(&alice, "j1", "jti2"),
            &material,
            10
        )));
        let mut deleted = material.clone();
        deleted.job.deleted_at = Some(5);
        assert!(denied(open(
            &master,
            token(&alice, "j1", "jti1"),
            &deleted,
            10
        )));
        let mut short = material;
        short.job.grant_count = 1;
        assert!(denied(open(
            &master,
            token(&alice, "j1", "jti1"),
            &short,
            10
        )));
    }
}
