//! Who the credential belongs to.

use axum::Json;
use serde_json::{json, Value};

use gatehouse_domain::Principal;

/// Any valid credential.
pub async fn whoami(principal: Principal) -> Json<Value> {
    Json(json!({
        "sub": principal.subject,
        "owner": principal.owner.as_str(),
        "cls": principal.class.as_str(),
        "scope": principal.scopes.to_string(),
        "jti": principal.jti,
        "exp": principal.expires_at,
        "operator": principal.is_operator(),
    }))
}
