//! Upstream credentials (SPEC §8): an owner pastes a long-lived token
//! once; Gatehouse checks it belongs to them, exchanges it for a
//! short-lived token it minted itself, revokes the pasted one, and from
//! then on rotates: mint new → persist it sealed → verify → switch →
//! revoke old.
//!
//! - `bootstrap.rs`: the one-shot exchange behind
//!   `PUT /v1/upstreams/{name}/credential`.
//! - `rotation.rs`: the background tick that rotates, finishes or undoes
//!   a rotation a crash interrupted, and retries failed revocations.
//! - `driver.rs` (+ `databricks.rs`, `generic.rs`): the three upstream
//!   calls, behind a trait.
//!
//! The token in use is also written, in the same transaction as each
//! switch, as the owner's secret `upstream.<name>` bound to the
//! upstream's host, so grants, placeholders and the egress proxy use it
//! like any secret and never see the pasted token.

pub mod bootstrap;
pub mod databricks;
pub mod driver;
pub mod generic;
pub mod revoke;
pub mod rotation;

use serde_json::{json, Value};

use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::clock::{rfc3339, UnixTime};
use gatehouse_domain::crypto::{self, Purpose};
use gatehouse_domain::{Email, SecretBytes};
use gatehouse_store::{SecretRecord, UpstreamSlot, UpstreamTokenState};

use crate::config::upstream::{DriverConfig, UpstreamConfig};
use crate::error::{ApiError, ApiResult};
use crate::state::Inner;
use driver::UpstreamDriver;

/// The secret name under which agents reach an upstream's current token;
/// users cannot write or delete names with this prefix.
pub const SECRET_PREFIX: &str = "upstream.";

pub fn secret_name(upstream: &str) -> String {
    format!("{SECRET_PREFIX}{upstream}")
}

/// One configured upstream with its driver. The mutex keeps this
/// process's tick and bootstrap from interleaving on one upstream; the
/// store's advisory lock does the same across replicas.
pub struct Upstream {
    pub config: UpstreamConfig,
    pub driver: Box<dyn UpstreamDriver>,
    pub(crate) local: tokio::sync::Mutex<()>,
    /// After an upstream failure of mint or verify: (failures in a row,
    /// no new attempt before). In memory: a restart simply tries at once.
    pub(crate) setback: std::sync::Mutex<(i64, gatehouse_domain::clock::UnixTime)>,
}

/// Every configured upstream.
pub struct Upstreams {
    entries: Vec<Upstream>,
}

impl Upstreams {
    /// `instance` names this Gatehouse in the tokens it mints (the token
    /// issuer), so a person reading the upstream's token list knows them.
    pub fn new(
        configs: &[UpstreamConfig],
        http: &std::sync::Arc<gatehouse_egress::OutboundClient>,
        instance: &str,
    ) -> Self {
        let entries = configs
            .iter()
            .map(|c| {
                let driver: Box<dyn UpstreamDriver> = match &c.driver {
                    DriverConfig::Databricks => Box::new(databricks::Databricks {
                        http: http.clone(),
                        base_url: c.base_url.clone(),
                        comment: format!("gatehouse ({instance}) upstream {}", c.name),
                        own_prefix: format!("gatehouse ({instance}) upstream "),
                    }),
                    DriverConfig::Generic(spec) => Box::new(generic::Generic {
                        http: http.clone(),
                        base_url: c.base_url.clone(),
                        spec: (**spec).clone(),
                    }),
                };
                Upstream {
                    config: c.clone(),
                    driver,
                    local: tokio::sync::Mutex::new(()),
                    setback: std::sync::Mutex::new((0, 0)),
                }
            })
            .collect();
        Self { entries }
    }

    pub fn get(&self, name: &str) -> Option<&Upstream> {
        self.entries.iter().find(|e| e.config.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Upstream> {
        self.entries.iter()
    }
}

pub(crate) fn same_person(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// An audit event for an act of the rotation itself, filed under the
/// upstream's owner.
pub(crate) fn system_event(owner: &Email, action: &str, target: &str, outcome: &str) -> AuditEvent {
    AuditEvent {
        actor: "gatehouse".into(),
        cls: "system".into(),
        owner: owner.as_str().into(),
        action: action.into(),
        target: target.into(),
        outcome: outcome.into(),
        request_id: String::new(),
    }
}

/// Seals a token Gatehouse holds, bound to (owner, upstream, token id).
pub(crate) async fn seal_token(
    st: &Inner,
    owner: &Email,
    upstream: &str,
    token_id: &str,
    value: &SecretBytes,
    expires_at: UnixTime,
) -> ApiResult<UpstreamSlot> {
    let key = st
        .data_key(owner)
        .await?
        .ok_or_else(|| ApiError::forbidden("owner_unknown", "the owner has no data key"))?;
    Ok(UpstreamSlot {
        token_id: token_id.into(),
        sealed: crypto::seal(
            &key,
            Purpose::UpstreamToken,
            &[owner.as_str(), upstream, token_id],
            value.expose(),
        ),
        expires_at,
    })
}

pub(crate) async fn open_token(
    st: &Inner,
    owner: &Email,
    upstream: &str,
    slot: &UpstreamSlot,
) -> ApiResult<SecretBytes> {
    let key = st
        .data_key(owner)
        .await?
        .ok_or_else(|| ApiError::forbidden("owner_unknown", "the owner has no data key"))?;
    crypto::open(
        &key,
        Purpose::UpstreamToken,
        &[owner.as_str(), upstream, &slot.token_id],
        &slot.sealed,
    )
    .map_err(ApiError::internal)
}

/// The owner's secret `upstream.<name>` holding `value`, bound to the
/// upstream's host and sealed exactly as `PUT /v1/secrets` seals.
pub(crate) async fn secret_record(
    st: &Inner,
    config: &UpstreamConfig,
    value: &SecretBytes,
    now: UnixTime,
) -> ApiResult<SecretRecord> {
    let name = secret_name(&config.name);
    let owner = &config.owner;
    let key = st
        .data_key(owner)
        .await?
        .ok_or_else(|| ApiError::forbidden("owner_unknown", "the owner has no data key"))?;
    let created_at = st
        .store
        .secret(owner, &name)
        .await?
        .map_or(now, |s| s.created_at);
    let hosts = gatehouse_domain::names::normalise_host_pattern(&config.host())
        .into_iter()
        .collect::<Vec<_>>();
    Ok(SecretRecord {
        owner: owner.clone(),
        sealed: crypto::seal(
            &key,
            Purpose::SecretValue,
            &[owner.as_str(), &name],
            value.expose(),
        ),
        name,
        allowed_hosts: serde_json::to_string(&hosts).map_err(ApiError::internal)?,
        inject: None,
        created_at,
        updated_at: now,
    })
}

/// `{"configured","valid","expires_at","last_rotation"}` and the rest of
/// what an owner needs to see, read from the store alone: validity is the
/// recorded expiry against the clock, never an upstream call.
pub async fn status(st: &Inner, upstream: &Upstream) -> ApiResult<Value> {
    let c = &upstream.config;
    let now = st.now();
    let state = st.store.upstream_state(&c.name).await?;
    let tokens = st.store.upstream_open_tokens(&c.name).await?;
    let current = state.as_ref().and_then(|s| s.current.as_ref());
    let pending_revokes: Vec<Value> = tokens
        .iter()
        .filter(|t| t.state == UpstreamTokenState::PendingRevoke)
        .map(|t| {
            json!({
                "token_id": t.token_id,
                "origin": t.origin,
                "attempts": t.attempts,
                "next_attempt_at": t.next_attempt_at.map(rfc3339),
                "last_error": t.last_error,
            })
        })
        .collect();
    Ok(json!({
        "name": c.name,
        "owner": c.owner.as_str(),
        "driver": c.driver.name(),
        "idle": c.idle.as_str(),
        "rotate_every_seconds": c.rotate_every_seconds,
        "lifetime_seconds": c.lifetime_seconds,
        "configured": current.is_some(),
        "valid": current.is_some_and(|t| t.expires_at > now),
        "token_id": current.map(|t| t.token_id.clone()),
        "expires_at": current.map(|t| rfc3339(t.expires_at)),
        "last_rotation": state.as_ref().and_then(|s| s.last_rotation).map(rfc3339),
        "rotation_in_progress": state.as_ref().is_some_and(|s| s.pending.is_some()),
        "pending_revokes": pending_revokes,
    }))
}
