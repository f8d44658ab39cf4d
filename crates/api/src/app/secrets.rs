//! Secrets (SPEC §4): written by their owner, sealed under the owner's
//! data key, never returned, logged or audited by value. Writing and
//! deleting are gated verbs: a human session runs them at once, any
//! other credential waits for a human.

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use gatehouse_domain::names::{normalise_host_pattern, validate_secret_name};
use gatehouse_domain::{CredentialClass, Principal, SecretBytes};
use gatehouse_store::SecretRecord;

use crate::error::{ApiError, ApiResult};
use crate::gate::{gate, GateOutcome, GatedCall, SecretWrite};
use crate::request_id::RequestId;
use crate::state::AppState;

const MAX_VALUE_BYTES: usize = 64 * 1024;
pub const MAX_ALLOWED_HOSTS: usize = 64;
/// `inject.header`: an RFC 9110 token, as `validate_inject` checks it.
pub const HEADER_NAME_PATTERN: &str = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$";
/// `inject.format`: printable, holding `{value}`.
pub const INJECT_FORMAT_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*\{value\}[^\x00-\x1f\x7f-\x9f]*$";
pub const MAX_INJECT_FORMAT: usize = 256;

/// A secret to write: the value already in a zeroizing buffer.
pub struct SecretInput {
    pub value: SecretBytes,
    pub allowed_hosts: Vec<String>,
    pub inject: Option<Inject>,
}

/// A header added, with the real value, to requests towards the bound
/// hosts (SPEC §6).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inject {
    #[schema(schema_with = crate::openapi::grammar::header_name)]
    pub header: String,
    /// Must contain `{value}`.
    #[schema(schema_with = crate::openapi::grammar::inject_format)]
    pub format: String,
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
/// `headers` carries the operator bypass, if any; the answer is the
/// gate's (`201`/`200` written, `202` held).
pub async fn put(
    st: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    request: &RequestId,
    name: String,
    input: SecretInput,
) -> ApiResult<GateOutcome> {
    checked_name(&name)?;
    let value = input.value;
    if value.is_empty() {
        return Err(ApiError::bad_request("value must not be empty"));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::bad_request(format!(
            "value is longer than {MAX_VALUE_BYTES} bytes"
        )));
    }
    if input.allowed_hosts.len() > MAX_ALLOWED_HOSTS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_ALLOWED_HOSTS} allowed_hosts"
        )));
    }
    let allowed_hosts = input
        .allowed_hosts
        .iter()
        .map(|h| validate_host_pattern(h))
        .collect::<ApiResult<Vec<_>>>()?;
    let inject = match &input.inject {
        Some(inject) => {
            validate_inject(inject)?;
            Some(serde_json::to_value(inject).map_err(ApiError::internal)?)
        }
        None => None,
    };
    refuse_self_targeted(st, principal, &name).await?;
    let call = GatedCall::SecretWrite(SecretWrite {
        name,
        value,
        allowed_hosts,
        inject,
    });
    gate(st, principal, headers, request, call).await
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
pub async fn list(st: &AppState, principal: &Principal) -> ApiResult<Vec<SecretRecord>> {
    Ok(st.store.list_secrets(&principal.owner).await?)
}

/// Scope `secrets:write`; gated like a write (`204` deleted, `202` held).
pub async fn delete(
    st: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    request: &RequestId,
    name: String,
) -> ApiResult<GateOutcome> {
    checked_name(&name)?;
    refuse_self_targeted(st, principal, &name).await?;
    gate(
        st,
        principal,
        headers,
        request,
        GatedCall::SecretDelete { name },
    )
    .await
}
