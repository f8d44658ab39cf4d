//! The one router builder, used by `serve` and by every test.
//!
//! Routes are declared in one table together with their access: public,
//! or a [`Rule`] naming the scope the route needs, the credential classes
//! it admits and whether it is the operator's. The router hands each
//! route's rule to the `Principal` extractor (a request extension), which
//! enforces it after the one token verifier and before the handler runs;
//! tests enumerate the table: every authenticated route refuses a missing
//! or revoked token, every rule holds for every credential class, and the
//! set of public routes is pinned.

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{middleware, Extension, Router};

use gatehouse_domain::access::{Rule, ANY, JOB, NOT_JOB, SESSION};
use gatehouse_domain::Scope;

use crate::access::RouteRule;
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
    /// Takes a credential, i.e. goes through the one token verifier, and
    /// is held to the route's [`Rule`].
    Authenticated,
}

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    /// `Some` exactly for authenticated routes.
    pub rule: Option<Rule>,
}

/// A public route.
const PUBLIC: Option<Rule> = None;

/// A route needing `scope` (or none), for the given classes.
const fn needs(
    scope: Option<Scope>,
    classes: &'static [gatehouse_domain::CredentialClass],
) -> Option<Rule> {
    Some(Rule::new(scope, classes))
}

fn at<H, T>(
    method: Method,
    path: &'static str,
    rule: Option<Rule>,
    handler: H,
) -> (RouteSpec, MethodRouter<AppState>)
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    let mut route = on(filter, handler);
    if let Some(rule) = rule {
        route = route.layer(Extension(RouteRule {
            rule,
            method: method_name(&method),
            path,
        }));
    }
    (
        RouteSpec {
            method,
            path,
            access: if rule.is_some() {
                Access::Authenticated
            } else {
                Access::Public
            },
            rule,
        },
        route,
    )
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

const RELAY: &str = "/relay/{host}/{*path}";

fn table() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    use Scope::*;
    let job = needs(Some(CredentialsRead), JOB);
    let human = needs(None, SESSION);
    let operator = Some(Rule::new(None, SESSION).operator_only());
    vec![
        at(Method::GET, "/healthz", PUBLIC, health::healthz),
        at(Method::GET, "/readyz", PUBLIC, health::readyz),
        at(Method::GET, "/.well-known/jwks.json", PUBLIC, health::jwks),
        at(Method::GET, "/metrics", PUBLIC, crate::metrics::render),
        at(Method::GET, "/v1/openapi.json", PUBLIC, openapi::document),
        at(
            Method::POST,
            "/v1/bootstrap/claim",
            PUBLIC,
            bootstrap::claim,
        ),
        at(Method::POST, "/v1/login", PUBLIC, owners::login),
        at(Method::POST, "/v1/owners", operator, owners::create),
        at(
            Method::POST,
            "/v1/owners/{email}/recover",
            operator,
            owners::recover,
        ),
        at(
            Method::GET,
            "/v1/auth/whoami",
            needs(None, ANY),
            whoami::whoami,
        ),
        at(
            Method::GET,
            "/v1/secrets",
            needs(Some(SecretsWrite), NOT_JOB),
            secrets::list,
        ),
        at(
            Method::PUT,
            "/v1/secrets/{name}",
            needs(Some(SecretsWrite), NOT_JOB),
            secrets::put,
        ),
        at(
            Method::DELETE,
            "/v1/secrets/{name}",
            needs(Some(SecretsWrite), NOT_JOB),
            secrets::delete,
        ),
        at(
            Method::GET,
            "/v1/audit",
            needs(Some(AuditRead), NOT_JOB),
            audit::list,
        ),
        at(Method::POST, "/v1/agents", human, agents::create),
        at(
            Method::GET,
            "/v1/agents",
            needs(Some(JobsRead), NOT_JOB),
            agents::list,
        ),
        at(
            Method::PUT,
            "/v1/agents/{name}/egress",
            needs(Some(JobsCreate), NOT_JOB),
            agents::set_egress,
        ),
        at(
            Method::PUT,
            "/v1/agents/{name}/secrets",
            needs(Some(JobsCreate), NOT_JOB),
            agents::set_secrets,
        ),
        at(
            Method::POST,
            "/v1/tokens",
            needs(Some(TokensWrite), NOT_JOB),
            tokens::mint,
        ),
        at(
            Method::GET,
            "/v1/tokens",
            needs(Some(TokensWrite), NOT_JOB),
            tokens::list,
        ),
        at(
            Method::POST,
            "/v1/tokens/revoke",
            needs(Some(TokensWrite), NOT_JOB),
            tokens::revoke,
        ),
        at(
            Method::POST,
            "/v1/jobs",
            needs(Some(JobsCreate), NOT_JOB),
            jobs::create,
        ),
        at(
            Method::GET,
            "/v1/jobs",
            needs(Some(JobsRead), NOT_JOB),
            jobs::list,
        ),
        at(
            Method::GET,
            "/v1/jobs/{id}",
            needs(Some(JobsRead), NOT_JOB),
            jobs::get,
        ),
        at(
            Method::DELETE,
            "/v1/jobs/{id}",
            needs(Some(JobsCreate), NOT_JOB),
            jobs::delete,
        ),
        at(Method::GET, "/v1/job/credentials", job, jobs::credentials),
        at(
            Method::POST,
            "/v1/hooks",
            needs(Some(HooksWrite), SESSION),
            hooks::create,
        ),
        at(
            Method::GET,
            "/v1/hooks",
            needs(Some(HooksWrite), NOT_JOB),
            hooks::list,
        ),
        at(
            Method::DELETE,
            "/v1/hooks/{id}",
            needs(Some(HooksWrite), SESSION),
            hooks::delete,
        ),
        // Any credential of the operator's account may ask; a
        // non-interactive one is held for approval (owner.deprovision).
        at(
            Method::DELETE,
            "/v1/owners/{email}",
            Some(Rule::new(None, NOT_JOB).operator_only()),
            owners::deprovision,
        ),
        at(
            Method::DELETE,
            "/v1/jobs",
            needs(Some(JobsCreate), NOT_JOB),
            jobs::delete_all,
        ),
        // Requesters poll their own approvals; humans list and decide.
        at(
            Method::GET,
            "/v1/approvals",
            needs(None, NOT_JOB),
            approvals::list,
        ),
        at(
            Method::GET,
            "/v1/approvals/{id}",
            needs(None, NOT_JOB),
            approvals::get,
        ),
        at(
            Method::POST,
            "/v1/approvals/{id}/decision",
            human,
            approvals::decide,
        ),
        at(Method::POST, "/hooks/{id}", PUBLIC, inbound::deliver),
        at(
            Method::GET,
            "/v1/upstreams",
            needs(None, NOT_JOB),
            upstreams::list,
        ),
        at(
            Method::PUT,
            "/v1/upstreams/{name}/credential",
            human,
            upstreams::put_credential,
        ),
        at(
            Method::DELETE,
            "/v1/upstreams/{name}/credential",
            needs(Some(SecretsWrite), NOT_JOB),
            upstreams::revoke_credential,
        ),
        at(
            Method::GET,
            "/v1/upstreams/{name}/status",
            needs(None, NOT_JOB),
            upstreams::status,
        ),
        // Egress (SPEC §6): the interception CA, and the relay, whose job
        // token is checked by the one verifier through the proxy engine
        // (its directory admits job tokens only: the rule below).
        at(Method::GET, "/v1/egress/ca.pem", PUBLIC, egress::ca_pem),
        at(Method::GET, RELAY, job, egress::relay),
        at(Method::POST, RELAY, job, egress::relay),
        at(Method::PUT, RELAY, job, egress::relay),
        at(Method::PATCH, RELAY, job, egress::relay),
        at(Method::DELETE, RELAY, job, egress::relay),
    ]
}

/// Every route with its method, access class and rule.
pub fn route_specs() -> Vec<RouteSpec> {
    table().into_iter().map(|(spec, _)| spec).collect()
}

pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for (spec, method_router) in table() {
        router = router.route(spec.path, method_router);
    }
    router
        .route_layer(middleware::from_fn(crate::metrics::tag_route))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(crate::gate::refuse_malformed_bypass))
        .layer(middleware::from_fn(crate::rejections::as_json))
        .layer(middleware::from_fn(request_id::assign))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::observe,
        ))
        .with_state(state)
}
