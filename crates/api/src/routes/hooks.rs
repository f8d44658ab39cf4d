//! Registering inbound webhooks: an owner's human session names the
//! provider, the signing secret (sealed at once, never returned) and where
//! verified deliveries go.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use gatehouse_domain::clock::rfc3339;
use gatehouse_domain::crypto::{self, Purpose};
use gatehouse_domain::webhook::{verifier_for, Provider};
use gatehouse_domain::{Principal, SecretBytes};
use gatehouse_store::HookRecord;

use crate::error::{ApiError, ApiResult};
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHook {
    #[schema(schema_with = crate::openapi::grammar::hook_provider)]
    provider: String,
    /// The provider's signing secret; never returned.
    #[schema(value_type = String, write_only)]
    secret: HookSecretInput,
    /// Where verified deliveries go; refused (400 forward_to_refused) when
    /// it does not pass the outbound address check.
    forward_to: String,
}

struct HookSecretInput(SecretBytes);

impl<'de> Deserialize<'de> for HookSecretInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| HookSecretInput(SecretBytes::from_string(s)))
    }
}

fn hook_url(headers: &HeaderMap, id: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:8270");
    format!("http://{host}/hooks/{id}")
}

/// Human session with `hooks:write`. Non-interactive credentials are
/// refused until they can be routed to a human approval.
pub async fn create(
    principal: Principal,
    State(st): State<AppState>,
    headers: HeaderMap,
    request: RequestId,
    ApiJson(body): ApiJson<NewHook>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let provider = Provider::parse(&body.provider).map_err(|_| {
        ApiError::bad_request("provider must be slack, github, discord, telegram, meta, stripe or generic_hmac_sha256")
    })?;
    // An outbound target like any other (SPEC §12): refused now if it
    // points inside, at Gatehouse itself, or at a port not allowed.
    crate::outbound::check_user_target(&st.outbound, "forward_to", &body.forward_to).await?;
    let secret = body.secret.0;
    // Building the verifier checks the secret's form (e.g. Discord's key).
    verifier_for(provider, &secret)
        .map_err(|e| ApiError::bad_request(format!("secret refused: {}", e.code())))?;
    let id = gatehouse_domain::codes::random_id();
    let owner = &principal.owner;
    let data_key = st
        .data_key(owner)
        .await?
        .ok_or_else(|| ApiError::forbidden("owner_unknown", "the owner has no data key"))?;
    let now = st.now();
    let hook = HookRecord {
        id: id.clone(),
        owner: owner.clone(),
        provider: provider.as_str().into(),
        sealed: crypto::seal(
            &data_key,
            Purpose::HookSecret,
            &[owner.as_str(), &id],
            secret.expose(),
        ),
        forward_to: body.forward_to.clone(),
        created_at: now,
    };
    let event = audit_event(
        &principal,
        "hook.create",
        &format!("{id} {}", provider.as_str()),
        "ok",
        &request,
    );
    st.store.create_hook(&hook, event, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "hook_id": id, "url": hook_url(&headers, &id) })),
    ))
}

/// Scope `hooks:write`: the owner's hooks, never their secrets.
pub async fn list(
    principal: Principal,
    State(st): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Value>>> {
    let hooks = st.store.hooks(&principal.owner).await?;
    Ok(Json(
        hooks
            .iter()
            .map(|h| {
                json!({
                    "hook_id": h.id,
                    "provider": h.provider,
                    "forward_to": h.forward_to,
                    "url": hook_url(&headers, &h.id),
                    "created_at": rfc3339(h.created_at),
                })
            })
            .collect(),
    ))
}

/// Human session with `hooks:write`.
pub async fn delete(
    principal: Principal,
    State(st): State<AppState>,
    Path(id): Path<String>,
    request: RequestId,
) -> ApiResult<StatusCode> {
    let event = audit_event(&principal, "hook.delete", &id, "ok", &request);
    if st
        .store
        .delete_hook(&principal.owner, &id, event, st.now())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("no such hook".into()))
    }
}
