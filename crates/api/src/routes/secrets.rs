//! Secrets: written by their owner, sealed under the owner's data key,
//! never returned, logged or audited by value.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::crypto::{self, Purpose};
use gatehouse_domain::names::{normalise_host_pattern, validate_secret_name};
use gatehouse_domain::{Email, Principal, Scope, SecretBytes};
use gatehouse_store::{PutOutcome, SecretRecord};

use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

const MAX_VALUE_BYTES: usize = 64 * 1024;
const MAX_ALLOWED_HOSTS: usize = 64;

/// The value is taken straight into a zeroizing buffer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    value: SecretInput,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    inject: Option<Inject>,
}

struct SecretInput(SecretBytes);

impl<'de> Deserialize<'de> for SecretInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretInput(SecretBytes::from_string(s)))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inject {
    header: String,
    format: String,
}

fn validate_host_pattern(pattern: &str) -> Result<String, ApiError> {
    normalise_host_pattern(pattern).ok_or_else(|| {
        ApiError::bad_request(format!(
            "allowed_hosts entry {:?} is not a host name or *.suffix",
            pattern.chars().take(80).collect::<String>()
        ))
    })
}

fn validate_inject(inject: &Inject) -> Result<(), ApiError> {
    let header_ok = !inject.header.is_empty()
        && inject.header.len() <= 128
        && inject
            .header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !header_ok {
        return Err(ApiError::bad_request(
            "inject.header is not a valid header name",
        ));
    }
    if !inject.format.contains("{value}")
        || inject.format.len() > 256
        || inject.format.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "inject.format must contain {value}, be at most 256 characters and hold no control characters",
        ));
    }
    Ok(())
}

fn metadata(r: &SecretRecord) -> Value {
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

fn checked_name(name: &str) -> ApiResult<()> {
    validate_secret_name(name).map_err(|e| ApiError::BadRequest {
        code: "invalid_name",
        message: e.to_string(),
    })?;
    // upstream.<name> is written only by the upstream rotation (SPEC §8).
    if name.starts_with(crate::upstream::SECRET_PREFIX) {
        return Err(ApiError::forbidden(
            "reserved_name",
            "secrets named upstream.* hold rotated upstream tokens; set them with PUT /v1/upstreams/{name}/credential",
        ));
    }
    Ok(())
}

/// Human session with `secrets:write`. Non-interactive credentials are
/// refused until they can be routed to a human approval.
pub async fn put(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    request: RequestId,
    ApiJson(body): ApiJson<PutSecret>,
) -> ApiResult<Response> {
    principal.require_scope(Scope::SecretsWrite)?;
    principal.require_human()?;
    checked_name(&name)?;
    let value = body.value.0;
    if value.is_empty() {
        return Err(ApiError::bad_request("value must not be empty"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::bad_request(format!(
            "value is longer than {MAX_VALUE_BYTES} bytes"
        )));
    }
    if body.allowed_hosts.len() > MAX_ALLOWED_HOSTS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_ALLOWED_HOSTS} allowed_hosts"
        )));
    }
    let hosts = body
        .allowed_hosts
        .iter()
        .map(|h| validate_host_pattern(h))
        .collect::<ApiResult<Vec<_>>>()?;
    if let Some(inject) = &body.inject {
        validate_inject(inject)?;
    }
    let sealed = seal_for(&st, &principal.owner, &name, &value).await?;
    let now = st.now();
    let created_at = st
        .store
        .secret(&principal.owner, &name)
        .await?
        .map_or(now, |s| s.created_at);
    let record = SecretRecord {
        owner: principal.owner.clone(),
        name: name.clone(),
        sealed,
        allowed_hosts: serde_json::to_string(&hosts).map_err(ApiError::internal)?,
        inject: body
            .inject
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(ApiError::internal)?,
        created_at,
        updated_at: now,
    };
    let event = audit_event(&principal, "secret.write", &name, "ok", &request);
    let status = match st.store.put_secret(&record, event, now).await? {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Replaced => StatusCode::OK,
    };
    Ok((status, Json(metadata(&record))).into_response())
}

/// Seals under the owner's data key, with (owner, name) bound in.
pub async fn seal_for(
    st: &AppState,
    owner: &Email,
    name: &str,
    value: &SecretBytes,
) -> ApiResult<Vec<u8>> {
    let data_key = st
        .data_key(owner)
        .await?
        .ok_or_else(|| ApiError::forbidden("owner_unknown", "the owner has no data key"))?;
    Ok(crypto::seal(
        &data_key,
        Purpose::SecretValue,
        &[owner.as_str(), name],
        value.expose(),
    ))
}

/// Any credential of the owner: names and metadata, never values.
pub async fn list(principal: Principal, State(st): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let secrets = st.store.list_secrets(&principal.owner).await?;
    Ok(Json(secrets.iter().map(metadata).collect()))
}

/// Human session with `secrets:write`.
pub async fn delete(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    request: RequestId,
) -> ApiResult<StatusCode> {
    principal.require_scope(Scope::SecretsWrite)?;
    principal.require_human()?;
    checked_name(&name)?;
    let event = audit_event(&principal, "secret.delete", &name, "ok", &request);
    if st
        .store
        .delete_secret(&principal.owner, &name, event, st.now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no secret named {name}")))
    }
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
