//! Liveness, readiness and the public signing keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the store answers and the revocation view is fresh.
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    let store_ok = match st.store.ping().await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("readiness: store unreachable: {e}");
            false
        }
    };
    let revocations_fresh = st.auth.revocations.is_fresh();
    let ready = store_ok && revocations_fresh;
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "store": if store_ok { "ok" } else { "unreachable" },
        "revocations": if revocations_fresh { "fresh" } else { "stale" },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
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
