//! Agents (SPEC §1, §4, §6): the owner's agents with their ceilings.

use serde_json::{json, Value};

use gatehouse_domain::Principal;

use crate::error::ApiResult;
use crate::state::AppState;

/// Scope `jobs:read`: the owner's agents with their egress policies
/// (`allow_hosts`, `null` when none) and secret ceilings (`secrets`,
/// `[]` until a human sets one), as `GET /v1/agents` shows them.
pub async fn list(st: &AppState, principal: &Principal) -> ApiResult<Vec<Value>> {
    let agents = st.store.agents(&principal.owner).await?;
    Ok(agents
        .iter()
        .map(|a| {
            let hosts: Value = a
                .allow_hosts
                .as_deref()
                .and_then(|h| serde_json::from_str(h).ok())
                .unwrap_or(Value::Null);
            let secrets: Value = a
                .secrets
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_else(|| json!([]));
            json!({ "name": a.name, "allow_hosts": hosts, "secrets": secrets })
        })
        .collect())
}
