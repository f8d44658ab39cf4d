//! The web console (SPEC §14): server-rendered HTML over the very
//! application functions the JSON API calls (`gatehouse_api::app`), so a
//! form and its API call mean the same thing and no rule has a second
//! implementation.
//!
//! The console adds routes to the one router builder
//! (`gatehouse_api::router::app_with`): each is declared with the same
//! access rules as the API's (public, or a [`Rule`] enforced by the one
//! `Principal` extractor after the one token verifier), and every answer
//! carries the console's security headers (`headers.rs`). State-changing
//! forms carry a CSRF token bound to the session (`csrf.rs`), and cookie
//! writes from another origin are refused by the API's own rule. A form
//! handler reads its fields only through the `CsrfForm` extractor
//! (`csrf_form.rs`), which refuses a form without that token.
//!
//! [`Rule`]: gatehouse_domain::access::Rule
#![forbid(unsafe_code)]

mod assets;
mod csrf;
mod csrf_form;
mod headers;
mod human;
mod layout;
mod pages;

use axum::http::Method;
use axum::middleware::map_response;

use gatehouse_api::router::{at, needs, Route, PUBLIC};
use gatehouse_domain::access::SESSION;
use gatehouse_domain::Scope;

use pages::{agents, approvals, audit, entry, secrets, tokens, upstreams};

/// The console's routes, for `gatehouse_api::router::app_with` (and
/// `server::start_with`). Pages for people take human sessions only.
pub fn routes() -> Vec<Route> {
    use Scope::*;
    let human = needs(None, SESSION);
    let table = vec![
        at(Method::GET, "/", PUBLIC, entry::index),
        at(Method::GET, "/claim", PUBLIC, entry::claim_page),
        at(Method::POST, "/claim", PUBLIC, entry::claim),
        at(Method::GET, "/login", PUBLIC, entry::login_page),
        at(Method::POST, "/login", PUBLIC, entry::login),
        at(Method::GET, "/logout", human, entry::logout_page),
        at(Method::POST, "/logout", human, entry::logout),
        at(Method::GET, assets::ROUTE, PUBLIC, assets::serve),
        at(Method::GET, "/approvals", human, approvals::inbox),
        at(Method::GET, "/approvals/{id}", human, approvals::detail),
        at(Method::POST, "/approvals/{id}", human, approvals::decide),
        at(Method::GET, "/upstreams", human, upstreams::page),
        at(
            Method::POST,
            "/upstreams/{name}/credential",
            human,
            upstreams::paste,
        ),
        at(
            Method::GET,
            "/secrets",
            needs(Some(SecretsWrite), SESSION),
            secrets::page,
        ),
        at(
            Method::POST,
            "/secrets",
            needs(Some(SecretsWrite), SESSION),
            secrets::write,
        ),
        at(
            Method::POST,
            "/secrets/{name}/delete",
            needs(Some(SecretsWrite), SESSION),
            secrets::delete,
        ),
        at(
            Method::GET,
            "/agents",
            needs(Some(JobsRead), SESSION),
            agents::page,
        ),
        at(Method::POST, "/agents", human, agents::create),
        at(
            Method::POST,
            "/agents/{name}/egress",
            needs(Some(JobsCreate), SESSION),
            agents::egress,
        ),
        at(
            Method::POST,
            "/agents/{name}/secrets",
            needs(Some(JobsCreate), SESSION),
            agents::secrets,
        ),
        at(
            Method::GET,
            "/tokens",
            needs(Some(TokensWrite), SESSION),
            tokens::page,
        ),
        at(
            Method::POST,
            "/tokens/revoke",
            needs(Some(TokensWrite), SESSION),
            tokens::revoke,
        ),
        at(
            Method::GET,
            "/audit",
            needs(Some(AuditRead), SESSION),
            audit::page,
        ),
    ];
    table
        .into_iter()
        .map(|(spec, route)| (spec, route.layer(map_response(headers::secure))))
        .collect()
}
