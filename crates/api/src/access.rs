//! Enforcing the route table's access rules.
//!
//! The router puts each route's [`RouteRule`] into the request's
//! extensions; the `Principal` and `JobCredential` extractors call
//! [`admit`] right after the one token verifier, before the handler runs.
//! A route that takes a credential but has no rule is refused (fail
//! closed): a rule cannot be forgotten silently.

use axum::http::request::Parts;

use gatehouse_domain::access::Rule;
use gatehouse_domain::principal::AccessDenied;
use gatehouse_domain::{CredentialClass, Principal, Role, ScopeSet};

use crate::error::ApiError;
use crate::request_id::RequestId;
use crate::state::{audit_event, AppState};

/// A route's rule, with the route it belongs to (for the audit record).
#[derive(Debug, Clone, Copy)]
pub struct RouteRule {
    pub rule: Rule,
    pub method: &'static str,
    pub path: &'static str,
}

fn route_rule(parts: &Parts) -> Result<RouteRule, ApiError> {
    parts
        .extensions
        .get::<RouteRule>()
        .copied()
        .ok_or_else(|| ApiError::internal(format!("route {} has no access rule", parts.uri.path())))
}

/// Checks the authenticated caller against the matched route's rule.
/// A refusal is audited under the caller's owner (never the token).
pub async fn admit(st: &AppState, parts: &Parts, principal: &Principal) -> Result<(), ApiError> {
    let route = route_rule(parts)?;
    match route.rule.admit(principal) {
        Ok(()) => Ok(()),
        Err(denied) => {
            audit_denied(st, parts, principal, &route, &denied).await;
            Err(denied.into())
        }
    }
}

/// The same check for a credential known only by its claims; the caller
/// maps a refusal to its own uniform answer.
pub fn admit_claims(
    parts: &Parts,
    class: CredentialClass,
    scopes: ScopeSet,
) -> Result<Result<(), AccessDenied>, ApiError> {
    // No route admitting a claims-only credential is operator-only; an
    // unknown role is never the operator.
    Ok(route_rule(parts)?
        .rule
        .admit_parts(class, scopes, Role::Owner))
}

async fn audit_denied(
    st: &AppState,
    parts: &Parts,
    principal: &Principal,
    route: &RouteRule,
    denied: &AccessDenied,
) {
    let request = parts
        .extensions
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId(String::new()));
    let source = crate::auth::peer_ip(parts)
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    if !st.access_audit.admit(source, st.now()) {
        return;
    }
    let code = ApiError::from(denied.clone()).code();
    let event = audit_event(
        principal,
        "access.denied",
        &format!("{} {}", route.method, route.path),
        &format!("denied:{code}"),
        &request,
    );
    if let Err(e) = st.store.append_audit(event, st.now()).await {
        tracing::warn!("could not audit a refused route access: {e}");
    }
}
