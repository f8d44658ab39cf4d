//! Upstream credentials (SPEC §8): the owner's one-shot bootstrap and the
//! status of each upstream. Only the upstream's owner (compared
//! case-insensitively) sees or sets anything; an unknown name is `404`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use gatehouse_domain::{Principal, SecretBytes};

use crate::app::upstreams::{self as app, configured};
use crate::error::{ApiError, ApiResult};
use crate::gate::{gate, GateOutcome, GatedCall};
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::AppState;
use crate::upstream::{same_person, status as upstream_status};

/// The pasted token goes straight into a zeroizing buffer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCredential {
    /// A token of the upstream's owner; exchanged, then revoked. Text
    /// without blanks or control characters, at most 4096 bytes
    /// (`upstream::bootstrap` checks it).
    #[schema(value_type = String, pattern = "^[^\\x00-\\x20\\x7f]+$", max_length = 4096, write_only)]
    token: TokenInput,
}

struct TokenInput(SecretBytes);

impl<'de> Deserialize<'de> for TokenInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| TokenInput(SecretBytes::from_string(s)))
    }
}

/// The upstream's owner, human session (`app::upstreams::put_credential`).
pub async fn put_credential(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    request: RequestId,
    ApiJson(body): ApiJson<PutCredential>,
) -> ApiResult<Json<Value>> {
    app::put_credential(&st, &principal, &name, body.token.0, &request)
        .await
        .map(Json)
}

/// The upstream's owner: takes back the credential Gatehouse holds (every
/// token revoked at the upstream, the secret `upstream.<name>` gone); the
/// owner may bootstrap again. A gated verb (`upstream.revoke`): a human
/// session runs it at once, any other credential waits for a human.
pub async fn revoke_credential(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: RequestId,
) -> ApiResult<GateOutcome> {
    let upstream = configured(&st, &name)?;
    if !same_person(principal.owner.as_str(), upstream.config.owner.as_str()) {
        return Err(ApiError::forbidden(
            "not_upstream_owner",
            "only the upstream's owner may revoke its credential",
        ));
    }
    gate(
        &st,
        &principal,
        &headers,
        &request,
        GatedCall::UpstreamRevoke { name },
    )
    .await
}

/// The upstream's owner, any credential class.
pub async fn status(
    principal: Principal,
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let upstream = configured(&st, &name)?;
    if !same_person(principal.owner.as_str(), upstream.config.owner.as_str()) {
        return Err(ApiError::forbidden(
            "not_upstream_owner",
            "only the upstream's owner may see its status",
        ));
    }
    upstream_status(&st, upstream).await.map(Json)
}

/// Any credential: the status of every upstream the caller owns.
pub async fn list(principal: Principal, State(st): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    app::list(&st, &principal).await.map(Json)
}
