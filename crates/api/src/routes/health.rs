//! Liveness, readiness and the public signing keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the store answers.
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    match st.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(e) => {
            tracing::warn!("readiness: store unreachable: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "store": "unreachable" })),
            )
        }
    }
}

/// RFC 8037 OKP keys: every key that may still verify a live token.
pub async fn jwks(State(st): State<AppState>) -> Json<Value> {
    let keys: Vec<Value> = st
        .auth
        .keys
        .public_keys()
        .into_iter()
        .map(|(kid, key)| {
            json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": kid,
                "x": gatehouse_domain::token::jws::b64(key.as_bytes()),
            })
        })
        .collect();
    Json(json!({ "keys": keys }))
}
