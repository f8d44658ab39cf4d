//! Secrets: written by their owner, sealed under the owner's data key,
//! never returned, logged or audited by value.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::crypto::{self, Purpose};
use gatehouse_domain::names::{normalise_host_pattern, validate_secret_name};
use gatehouse_domain::{CredentialClass, Email, Principal, SecretBytes};
use gatehouse_store::SecretRecord;

use crate::error::{ApiError, ApiResult};
use crate::gate::{gate, GatedCall, SecretWrite};
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::AppState;

const MAX_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_ALLOWED_HOSTS: usize = 64;
/// `inject.header`: an RFC 9110 token, as `validate_inject` checks it.
pub const HEADER_NAME_PATTERN: &str = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$";
/// `inject.format`: printable, holding `{value}`.
pub const INJECT_FORMAT_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*\{value\}[^\x00-\x1f\x7f-\x9f]*$";
pub const MAX_INJECT_FORMAT: usize = 256;

/// The value is taken straight into a zeroizing buffer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecret {
    /// Never returned, logged or audited.
    #[schema(value_type = String, min_length = 1, max_length = 65536, write_only)]
    value: SecretInput,
    /// Hosts the value may be sent to: exact names or `*.suffix`.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::grammar::host_bindings)]
    allowed_hosts: Vec<String>,
    inject: Option<Inject>,
}

struct SecretInput(SecretBytes);

impl<'de> Deserialize<'de> for SecretInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretInput(SecretBytes::from_string(s)))
    }
}

/// A header the proxy adds, with the real value, towards allowed hosts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inject {
    #[schema(schema_with = crate::openapi::grammar::header_name)]
    header: String,
    /// Must contain `{value}`.
    #[schema(schema_with = crate::openapi::grammar::inject_format)]
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
        || inject.format.chars().count() > MAX_INJECT_FORMAT
        || inject.format.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "inject.format must contain {value}, be at most 256 characters and hold no control characters",
        ));
    }
    Ok(())
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

/// Scope `secrets:write`. A gated verb: a human session writes at once;
/// any other credential gets `202` and waits for a human (SPEC §7), except
/// an agent or job writing a secret granted to itself, which is refused.
pub async fn put(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: RequestId,
    ApiJson(body): ApiJson<PutSecret>,
) -> ApiResult<Response> {
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
    let allowed_hosts = body
        .allowed_hosts
        .iter()
        .map(|h| validate_host_pattern(h))
        .collect::<ApiResult<Vec<_>>>()?;
    let inject = match &body.inject {
        Some(inject) => {
            validate_inject(inject)?;
            Some(serde_json::to_value(inject).map_err(ApiError::internal)?)
        }
        None => None,
    };
    refuse_self_targeted(&st, &principal, &name).await?;
    let call = GatedCall::SecretWrite(SecretWrite {
        name,
        value,
        allowed_hosts,
        inject,
    });
    gate(&st, &principal, &headers, &request, call).await
}

/// An agent (or one of its jobs) must not rewrite or remove a secret it
/// is granted: that would let it choose what it is later handed.
async fn refuse_self_targeted(st: &AppState, principal: &Principal, name: &str) -> ApiResult<()> {
    let agent = match principal.class {
        CredentialClass::Agent => principal.subject.as_str(),
        CredentialClass::Job => principal
            .subject
            .split_once('/')
            .map_or(principal.subject.as_str(), |(agent, _)| agent),
        CredentialClass::Session | CredentialClass::Api => return Ok(()),
    };
    if st
        .store
        .secret_granted_to_agent(&principal.owner, agent, name)
        .await?
    {
        return Err(ApiError::forbidden(
            "self_targeted_secret_write",
            format!("{name} is granted to this agent; it cannot write or delete it"),
        ));
    }
    Ok(())
}

/// Scope `secrets:write` (there is no read scope: seeing which secrets
/// exist is part of managing them): names and metadata, never values.
pub async fn list(principal: Principal, State(st): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let secrets = st.store.list_secrets(&principal.owner).await?;
    Ok(Json(secrets.iter().map(metadata).collect()))
}

/// Scope `secrets:write`; gated like a write.
pub async fn delete(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: RequestId,
) -> ApiResult<Response> {
    checked_name(&name)?;
    refuse_self_targeted(&st, &principal, &name).await?;
    gate(
        &st,
        &principal,
        &headers,
        &request,
        GatedCall::SecretDelete { name },
    )
    .await
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
