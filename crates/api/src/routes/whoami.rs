//! Who the credential belongs to (`app::identity::whoami`).

use axum::Json;
use serde_json::Value;

use gatehouse_domain::Principal;

/// Any valid credential.
pub async fn whoami(principal: Principal) -> Json<Value> {
    Json(crate::app::identity::whoami(&principal))
}
