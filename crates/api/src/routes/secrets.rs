//! Secrets: written by their owner, sealed under the owner's data key,
//! never returned, logged or audited by value.

use crate::gate::GateOutcome;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::crypto::{self, Purpose};
use gatehouse_domain::{Email, Principal, SecretBytes};
use gatehouse_store::SecretRecord;

use crate::app::secrets::{self as app, Inject};
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::AppState;

/// The value is taken straight into a zeroizing buffer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    /// Never returned, logged or audited.
    #[schema(value_type = String, min_length = 1, max_length = 65536, write_only)]
    value: ValueInput,
    /// Hosts the value may be sent to: exact names or `*.suffix`.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::grammar::host_bindings)]
    allowed_hosts: Vec<String>,
    inject: Option<Inject>,
}

struct ValueInput(SecretBytes);

impl<'de> Deserialize<'de> for ValueInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| ValueInput(SecretBytes::from_string(s)))
    }
}

pub fn metadata(r: &SecretRecord) -> Value {
    let hosts: Value = serde_json::from_str(&r.allowed_hosts).unwrap_or_else(|_| json!([]));
    let inject: Value = r
        .inject
        .as_deref()
        .and_then(|i| serde_json::from_str(i).ok())
        .unwrap_or(Value::Null);
    json!({
        "name": r.name,
        "allowed_hosts": hosts,
        "inject": inject,
        "created_at": rfc3339(r.created_at),
        "updated_at": rfc3339(r.updated_at),
    })
}

/// Scope `secrets:write` (`app::secrets::put`).
pub async fn put(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: RequestId,
    ApiJson(body): ApiJson<PutSecret>,
) -> ApiResult<GateOutcome> {
    let input = app::SecretInput {
        value: body.value.0,
        allowed_hosts: body.allowed_hosts,
        inject: body.inject,
    };
    app::put(&st, &principal, &headers, &request, name, input).await
}

/// Scope `secrets:write`: names and metadata, never values.
pub async fn list(principal: Principal, State(st): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let secrets = app::list(&st, &principal).await?;
    Ok(Json(secrets.iter().map(metadata).collect()))
}

/// Scope `secrets:write` (`app::secrets::delete`).
pub async fn delete(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: RequestId,
) -> ApiResult<GateOutcome> {
    app::delete(&st, &principal, &headers, &request, name).await
}

/// Opens an owner's secret: only under that owner's data key, with
/// (owner, name) as associated data. Every failure is the same `None`.
pub async fn open_for(st: &AppState, owner: &Email, name: &str) -> Option<SecretBytes> {
    let record = st.store.secret(owner, name).await.ok()??;
    let data_key = st.data_key(owner).await.ok()??;
    crypto::open(
        &data_key,
        Purpose::SecretValue,
        &[owner.as_str(), name],
        &record.sealed,
    )
    .ok()
}
