//! Getting in and out: `/` sends a newcomer to `/claim` (unclaimed) or
//! `/login`, and a signed-in person to `/approvals`; claiming and signing
//! in call the same functions as `POST /v1/bootstrap/claim` and
//! `POST /v1/login`; signing out revokes the session token (the kill
//! switch, by jti), then clears the cookie.

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

use gatehouse_api::app::sessions;
use gatehouse_api::auth::check_same_origin;
use gatehouse_api::error::ApiError;
use gatehouse_api::request_id::RequestId;
use gatehouse_api::state::AppState;
use gatehouse_store::BootstrapState;

use super::form;
use crate::csrf_form::{CsrfForm, TokenOnly};
use crate::human::{see_other, Human};
use crate::layout::{csrf_field, error_box, frame};

async fn claimed(st: &AppState) -> Result<bool, ApiError> {
    Ok(matches!(
        st.store.bootstrap_state().await?,
        BootstrapState::Claimed { .. }
    ))
}

/// Public.
pub async fn index(
    State(st): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let signed_in = st
        .auth
        .authenticate(&Method::GET, &headers, Some(peer.0.ip()))
        .await
        .is_ok_and(|p| p.is_human());
    if signed_in {
        return see_other("/approvals");
    }
    match claimed(&st).await {
        Ok(false) => see_other("/claim"),
        Ok(true) => see_other("/login"),
        Err(e) => crate::layout::error_page(None, &e),
    }
}

#[derive(Deserialize, Default)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    email: String,
}

fn claim_form(status: StatusCode, email: &str, error: Option<&ApiError>) -> Response {
    frame(
        status,
        "Claim this Gatehouse",
        None,
        "",
        html! {
            p { "This installation has no operator yet. Paste the one-time bootstrap code that "
                code { "gatehouse serve" } " printed (also in " code { "<data_dir>/bootstrap.code" }
                "), and the email address you will sign in with. You become the operator." }
            (error_box(error))
            form method="post" action="/claim" {
                label for="code" { "Bootstrap code" }
                input #code type="text" name="code" required autocomplete="off" spellcheck="false";
                label for="email" { "Your email" }
                input #email type="email" name="email" required autocomplete="email" value=(email);
                button type="submit" { "Claim" }
            }
        },
    )
}

/// Public: the claim form, while the installation is unclaimed.
pub async fn claim_page(State(st): State<AppState>) -> Response {
    match claimed(&st).await {
        Ok(true) => see_other("/login"),
        Ok(false) => claim_form(StatusCode::OK, "", None),
        Err(e) => crate::layout::error_page(None, &e),
    }
}

/// Public, like `POST /v1/bootstrap/claim` (same function); a
/// cross-origin post is refused by the API's same-origin rule.
pub async fn claim(
    State(st): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    request: RequestId,
    headers: HeaderMap,
    body: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    let body = match check_same_origin(&Method::POST, &headers).and_then(|()| form(body)) {
        Ok(b) => b,
        Err(e) => return claim_form(e.status(), "", Some(&e)),
    };
    match sessions::claim(&st, peer.0.ip(), &request, &body.code, &body.email).await {
        Ok(session) => signed_in(&st, &session),
        Err(e) => claim_form(e.status(), &body.email, Some(&e)),
    }
}

fn signed_in(st: &AppState, session: &sessions::Session) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session.cookie(st)),
            (header::LOCATION, "/approvals".to_string()),
        ],
    )
        .into_response()
}

fn login_form(status: StatusCode, email: &str, error: Option<&ApiError>) -> Response {
    frame(
        status,
        "Sign in",
        None,
        "",
        html! {
            p { "Sign in with your email and the one-time login code the operator gave you." }
            (error_box(error))
            form method="post" action="/login" {
                label for="email" { "Email" }
                input #email type="email" name="email" required autocomplete="email" value=(email);
                label for="code" { "One-time login code" }
                input #code type="text" name="code" required autocomplete="off" spellcheck="false";
                button type="submit" { "Sign in" }
            }
            p.small { "First start? " a href="/claim" { "Claim the installation" } " with the bootstrap code." }
        },
    )
}

/// Public.
pub async fn login_page() -> Response {
    login_form(StatusCode::OK, "", None)
}

/// Public, like `POST /v1/login` (same function).
pub async fn login(
    State(st): State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    request: RequestId,
    headers: HeaderMap,
    body: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    let body = match check_same_origin(&Method::POST, &headers).and_then(|()| form(body)) {
        Ok(b) => b,
        Err(e) => return login_form(e.status(), "", Some(&e)),
    };
    match sessions::login(&st, peer.0.ip(), &request, &body.email, &body.code).await {
        Ok(session) => signed_in(&st, &session),
        Err(e) => login_form(e.status(), &body.email, Some(&e)),
    }
}

/// Human session: a button, since signing out changes state.
pub async fn logout_page(who: Human) -> Response {
    frame(
        StatusCode::OK,
        "Sign out",
        Some(&who),
        "",
        html! {
            p { "Signing out revokes this session's token everywhere, then forgets the cookie." }
            form method="post" action="/logout" {
                (csrf_field(&who))
                button type="submit" { "Sign out now" }
            }
        },
    )
}

/// Human session, CSRF token required: the session token is revoked by
/// its jti (so a copied cookie dies too), then the cookie is cleared.
pub async fn logout(
    State(st): State<AppState>,
    request: RequestId,
    CsrfForm(who, TokenOnly {}): CsrfForm<TokenOnly>,
) -> Response {
    if let Err(e) = sessions::logout(&st, &who.principal, &request).await {
        return crate::layout::error_page(Some(&who), &e);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, sessions::cleared_cookie(&st)),
            (header::LOCATION, "/login".to_string()),
        ],
    )
        .into_response()
}
