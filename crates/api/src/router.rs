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
    agents, approval_events, approvals, audit, bootstrap, egress, health, hooks, inbound, jobs,
    mcp_servers, openapi, owners, secrets, tokens, upstreams, whoami,
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

/// A route of the table: what it is, and how it is served.
pub type Route = (RouteSpec, MethodRouter<AppState>);

/// A public route.
pub const PUBLIC: Option<Rule> = None;

/// A route needing `scope` (or none), for the given classes.
pub const fn needs(
    scope: Option<Scope>,
    classes: &'static [gatehouse_domain::CredentialClass],
) -> Option<Rule> {
    Some(Rule::new(scope, classes))
}

/// Declares a route with its access: the rule is attached to the route,
/// where the `Principal` extractor finds and enforces it. Other crates
/// (the console) declare their routes with this too.
pub fn at<H, T>(method: Method, path: &'static str, rule: Option<Rule>, handler: H) -> Route
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

fn table() -> Vec<Route> {
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
        // The inbox's live feed (server-sent events): whoever may list
        // approvals hears of those they may see.
        at(
            Method::GET,
            "/v1/approvals/events",
            needs(None, NOT_JOB),
            approval_events::stream,
        ),
        at(
            Method::POST,
            "/v1/approvals/{id}/decision",
            human,
            approvals::decide,
        ),
        at(Method::POST, "/hooks/{id}", PUBLIC, inbound::deliver),
        // Upstream MCP servers (SPEC §13): saving or deleting one decides
        // where an owner's secret is sent (`secrets:write`; a
        // non-interactive save is held as `policy.change`); reading holds
        // no value.
        at(
            Method::POST,
            "/v1/mcp/servers",
            needs(Some(SecretsWrite), NOT_JOB),
            mcp_servers::save,
        ),
        at(
            Method::GET,
            "/v1/mcp/servers",
            needs(None, NOT_JOB),
            mcp_servers::list,
        ),
        at(
            Method::GET,
            "/v1/mcp/servers/{name}",
            needs(None, NOT_JOB),
            mcp_servers::get,
        ),
        at(
            Method::DELETE,
            "/v1/mcp/servers/{name}",
            needs(Some(SecretsWrite), NOT_JOB),
            mcp_servers::delete,
        ),
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

/// The router of the API alone.
pub fn app(state: AppState) -> Router {
    app_with(state, Vec::new())
}

/// The one router builder: the API's table plus `extra` routes declared
/// the same way (the web console's, from the binary), all behind the same
/// middleware, body limit and fallback.
pub fn app_with(state: AppState, extra: Vec<Route>) -> Router {
    let mut router = Router::new();
    for (spec, method_router) in table().into_iter().chain(extra) {
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
