//! Inbound webhook deliveries: verified over the raw body before anything
//! parses it, refused when replayed, then forwarded to the owner's
//! endpoint with `X-Gatehouse-Verified`, through the one outbound client:
//! `forward_to` is checked again at every delivery (a name may resolve
//! elsewhere now), and only the provider's own headers go along
//! ([`gatehouse_domain::webhook::is_forwarded`]).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use gatehouse_domain::audit::AuditEvent;
use gatehouse_domain::crypto::{self, Purpose};
use gatehouse_domain::egress::outbound::Origin;
use gatehouse_domain::webhook::{
    is_forwarded, verifier_for, HeaderLookup, Provider, MAX_SKEW_SECS,
};
use gatehouse_egress::OutboundError;
use gatehouse_store::HookRecord;

use crate::error::ApiError;
use crate::json::MAX_BODY_BYTES;
use crate::request_id::RequestId;
use crate::state::AppState;

struct Headers<'a>(&'a HeaderMap);

impl HeaderLookup for Headers<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).map(HeaderValue::as_bytes)
    }
}

fn event(hook: &HookRecord, outcome: &str, request: &RequestId) -> AuditEvent {
    AuditEvent {
        actor: hook.provider.clone(),
        cls: "webhook".into(),
        owner: hook.owner.as_str().into(),
        action: "hook.deliver".into(),
        target: hook.id.clone(),
        outcome: outcome.into(),
        request_id: request.0.clone(),
    }
}

fn refused(code: &'static str) -> Response {
    let body = json!({ "error": { "code": "webhook_refused", "message": format!("delivery refused: {code}") } });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// Public: the signature is the credential.
pub async fn deliver(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: RequestId,
    body: Bytes,
) -> Response {
    match handle(&st, &id, &headers, &request, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    st: &AppState,
    id: &str,
    headers: &HeaderMap,
    request: &RequestId,
    body: &[u8],
) -> Result<Response, ApiError> {
    let hook = st
        .store
        .hook(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such hook".into()))?;
    let provider = Provider::parse(&hook.provider).map_err(ApiError::internal)?;
    let data_key = st
        .data_key(&hook.owner)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such hook".into()))?;
    let secret = crypto::open(
        &data_key,
        Purpose::HookSecret,
        &[hook.owner.as_str(), &hook.id],
        &hook.sealed,
    )
    .map_err(ApiError::internal)?;
    let verifier = verifier_for(provider, &secret).map_err(|e| ApiError::internal(e.code()))?;
    let now = st.now();
    let verified = match verifier.verify(body, &Headers(headers), now) {
        Ok(v) => v,
        Err(e) => {
            st.store
                .append_audit(event(&hook, &format!("denied:{}", e.code()), request), now)
                .await?;
            return Ok(refused(e.code()));
        }
    };
    let replay_key = verified.replay_key.as_bytes().to_vec();
    if provider.signs_timestamp() {
        let signed_at = verified.timestamp.unwrap_or(now);
        // Kept until the signed time can no longer pass the freshness check.
        if !st
            .store
            .remember_delivery(&replay_key, signed_at + MAX_SKEW_SECS + 1, now)
            .await?
        {
            st.store
                .append_audit(event(&hook, "denied:replayed", request), now)
                .await?;
            return Ok(refused("replayed"));
        }
    }
    if provider == Provider::Slack {
        if let Some(challenge) = slack_challenge(body) {
            st.store
                .append_audit(event(&hook, "ok:url_verification", request), now)
                .await?;
            return Ok(Json(json!({ "challenge": challenge })).into_response());
        }
    }
    match forward(st, &hook, provider, headers, body).await {
        Ok(response) => {
            st.store
                .append_audit(event(&hook, "ok", request), now)
                .await?;
            Ok(response)
        }
        Err(failure) => {
            tracing::warn!(hook = %hook.id, "forwarding failed: {}", failure.detail);
            if provider.signs_timestamp() {
                // Let the provider's retry through.
                st.store.forget_delivery(&replay_key).await?;
            }
            st.store
                .append_audit(event(&hook, &failure.outcome, request), now)
                .await?;
            let body = json!({ "error": { "code": "bad_gateway", "message": failure.message } });
            Ok((StatusCode::BAD_GATEWAY, Json(body)).into_response())
        }
    }
}

/// Slack's endpoint check, answered only after verification.
fn slack_challenge(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if v.get("type")?.as_str()? == "url_verification" {
        v.get("challenge")?.as_str().map(str::to_string)
    } else {
        None
    }
}

/// Why a verified delivery did not reach `forward_to`.
struct ForwardFailure {
    /// Audit outcome: `error:forward_refused:<reason>` or `error:forward_failed`.
    outcome: String,
    /// What the provider is told (no internal detail).
    message: String,
    /// What the log says.
    detail: String,
}

impl ForwardFailure {
    fn failed(detail: impl Into<String>) -> Self {
        Self {
            outcome: "error:forward_failed".into(),
            message: "the forward_to endpoint did not answer".into(),
            detail: detail.into(),
        }
    }
}

impl From<OutboundError> for ForwardFailure {
    fn from(e: OutboundError) -> Self {
        match e {
            OutboundError::Refused(_) | OutboundError::Malformed(_) | OutboundError::PlainHttp => {
                Self {
                    outcome: format!("error:forward_refused:{}", e.reason()),
                    message: format!("forward_to is refused ({})", e.reason()),
                    detail: e.to_string(),
                }
            }
            OutboundError::Unresolvable | OutboundError::Client(_) => Self::failed(e.to_string()),
        }
    }
}

async fn forward(
    st: &AppState,
    hook: &HookRecord,
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ForwardFailure> {
    let identity = st.config.identity.header.as_deref().unwrap_or("");
    let mut req = st
        .outbound
        .request(reqwest::Method::POST, &hook.forward_to, Origin::User)
        .await?
        .body(body.to_vec());
    for (name, value) in headers {
        if is_forwarded(provider, name.as_str()) && !name.as_str().eq_ignore_ascii_case(identity) {
            req = req.header(name, value);
        }
    }
    req = req.header("x-gatehouse-verified", provider.as_str());
    let upstream = req
        .send()
        .await
        .map_err(|e| ForwardFailure::failed(e.to_string()))?;
    let status = StatusCode::from_u16(upstream.status().as_u16())
        .map_err(|e| ForwardFailure::failed(e.to_string()))?;
    let content_type = upstream.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = upstream
        .bytes()
        .await
        .map_err(|e| ForwardFailure::failed(e.to_string()))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ForwardFailure::failed(
            "the endpoint's answer is larger than 1 MiB",
        ));
    }
    let mut response = (status, bytes).into_response();
    if let Some(ct) = content_type {
        response
            .headers_mut()
            .insert(HeaderName::from_static("content-type"), ct);
    }
    Ok(response)
}
