//! The one router builder, used by `serve` and by every test.
//!
//! Routes are declared in one table together with their access class, so
//! tests can enumerate them: every `Authenticated` route must refuse a
//! missing or revoked token, and the set of `Public` routes is pinned.

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{middleware, Router};

use crate::error::ApiError;
use crate::json::MAX_BODY_BYTES;
use crate::request_id;
use crate::routes::{
    agents, approvals, audit, bootstrap, egress, health, hooks, inbound, jobs, openapi, owners,
    secrets, tokens, upstreams, whoami,
};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reachable without a credential.
    Public,
    /// Takes a `Principal`, i.e. goes through the one token verifier.
    Authenticated,
}

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

fn at<H, T>(
    method: Method,
    path: &'static str,
    access: Access,
    handler: H,
) -> (RouteSpec, MethodRouter<AppState>)
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    (
        RouteSpec {
            method,
            path,
            access,
        },
        on(filter, handler),
    )
}

const RELAY: &str = "/relay/{host}/{*path}";

fn table() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    use Access::{Authenticated as Auth, Public};
    vec![
        at(Method::GET, "/healthz", Public, health::healthz),
        at(Method::GET, "/readyz", Public, health::readyz),
        at(Method::GET, "/.well-known/jwks.json", Public, health::jwks),
        at(Method::GET, "/metrics", Public, crate::metrics::render),
        at(Method::GET, "/v1/openapi.json", Public, openapi::document),
        at(
            Method::POST,
            "/v1/bootstrap/claim",
            Public,
            bootstrap::claim,
        ),
        at(Method::POST, "/v1/login", Public, owners::login),
        at(Method::POST, "/v1/owners", Auth, owners::create),
        at(Method::GET, "/v1/auth/whoami", Auth, whoami::whoami),
        at(Method::GET, "/v1/secrets", Auth, secrets::list),
        at(Method::PUT, "/v1/secrets/{name}", Auth, secrets::put),
        at(Method::DELETE, "/v1/secrets/{name}", Auth, secrets::delete),
        at(Method::GET, "/v1/audit", Auth, audit::list),
        at(Method::POST, "/v1/agents", Auth, agents::create),
        at(Method::GET, "/v1/agents", Auth, agents::list),
        at(
            Method::PUT,
            "/v1/agents/{name}/egress",
            Auth,
            agents::set_egress,
        ),
        at(
            Method::PUT,
            "/v1/agents/{name}/secrets",
            Auth,
            agents::set_secrets,
        ),
        at(Method::POST, "/v1/tokens", Auth, tokens::mint),
        at(Method::GET, "/v1/tokens", Auth, tokens::list),
        at(Method::POST, "/v1/tokens/revoke", Auth, tokens::revoke),
        at(Method::POST, "/v1/jobs", Auth, jobs::create),
        at(Method::GET, "/v1/jobs", Auth, jobs::list),
        at(Method::GET, "/v1/jobs/{id}", Auth, jobs::get),
        at(Method::DELETE, "/v1/jobs/{id}", Auth, jobs::delete),
        at(Method::GET, "/v1/job/credentials", Auth, jobs::credentials),
        at(Method::POST, "/v1/hooks", Auth, hooks::create),
        at(Method::GET, "/v1/hooks", Auth, hooks::list),
        at(Method::DELETE, "/v1/hooks/{id}", Auth, hooks::delete),
        at(
            Method::DELETE,
            "/v1/owners/{email}",
            Auth,
            owners::deprovision,
        ),
        at(Method::DELETE, "/v1/jobs", Auth, jobs::delete_all),
        at(Method::GET, "/v1/approvals", Auth, approvals::list),
        at(Method::GET, "/v1/approvals/{id}", Auth, approvals::get),
        at(
            Method::POST,
            "/v1/approvals/{id}/decision",
            Auth,
            approvals::decide,
        ),
        at(Method::POST, "/hooks/{id}", Public, inbound::deliver),
        at(Method::GET, "/v1/upstreams", Auth, upstreams::list),
        at(
            Method::PUT,
            "/v1/upstreams/{name}/credential",
            Auth,
            upstreams::put_credential,
        ),
        at(
            Method::DELETE,
            "/v1/upstreams/{name}/credential",
            Auth,
            upstreams::revoke_credential,
        ),
        at(
            Method::GET,
            "/v1/upstreams/{name}/status",
            Auth,
            upstreams::status,
        ),
        // Egress (SPEC §6): the interception CA, and the relay, whose job
        // token is checked by the one verifier through the proxy engine.
        at(Method::GET, "/v1/egress/ca.pem", Public, egress::ca_pem),
        at(Method::GET, RELAY, Auth, egress::relay),
        at(Method::POST, RELAY, Auth, egress::relay),
        at(Method::PUT, RELAY, Auth, egress::relay),
        at(Method::PATCH, RELAY, Auth, egress::relay),
        at(Method::DELETE, RELAY, Auth, egress::relay),
    ]
}

/// Every route with its method and access class.
pub fn route_specs() -> Vec<RouteSpec> {
    table().into_iter().map(|(spec, _)| spec).collect()
}

pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for (spec, method_router) in table() {
        router = router.route(spec.path, method_router);
    }
    router
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(request_id::assign))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::count,
        ))
        .with_state(state)
}
