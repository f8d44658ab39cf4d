//! Who a credential belongs to (`GET /v1/auth/whoami`, the MCP `whoami`
//! tool): any valid credential may ask.

use serde_json::{json, Value};

use gatehouse_domain::Principal;

/// `{"sub","owner","cls","scope","jti","exp","operator"}` (SPEC §1).
pub fn whoami(principal: &Principal) -> Value {
    json!({
        "sub": principal.subject,
        "owner": principal.owner.as_str(),
        "cls": principal.class.as_str(),
        "scope": principal.scopes.to_string(),
        "jti": principal.jti,
        "exp": principal.expires_at,
        "operator": principal.is_operator(),
    })
}
