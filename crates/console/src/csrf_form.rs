//! The one way a console handler gets a posted form: [`CsrfForm`] signs
//! the person in, reads the urlencoded body and refuses it unless it
//! carries the CSRF token of that very session (`csrf::holds`). A form
//! handler has no other way to its fields, so none can forget the check.
//!
//! The refusals are the ones every form has always given: no or a dead
//! session → the sign-in page (the `Human` extractor); an unreadable body
//! → `400` with axum's reason; a missing or wrong token → `403 csrf`, and
//! nothing happens. The body is read before the token is checked because
//! the token is one of its fields.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, RawForm, Request};
use axum::http::request::Parts;
use axum::response::Response;
use axum::Form;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use gatehouse_api::error::ApiError;
use gatehouse_api::state::AppState;

use crate::csrf;
use crate::human::Human;
use crate::layout::error_page;
use crate::pages::unreadable;

/// A signed-in person and the form they posted, its CSRF token checked.
/// `T` holds the form's other fields; the token is read on its own, so
/// `T` need not (and should not) declare it.
pub struct CsrfForm<T>(pub Human, pub T);

/// A form whose only field is the CSRF token.
#[derive(Deserialize)]
pub struct TokenOnly {}

/// The token field (`csrf::FIELD`), read apart from the form's own.
#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    csrf_token: String,
}

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let who = Human::from_request_parts(&mut parts, st).await?;
        let refuse = |e: ApiError| error_page(Some(&who), &e);
        // The body is read once (content type and size limit checked as
        // axum's `Form` checks them), then parsed twice by `Form` itself,
        // so a malformed form is refused with the very reason it always was.
        let RawForm(bytes) = RawForm::from_request(Request::from_parts(parts.clone(), body), st)
            .await
            .map_err(|e| refuse(unreadable(e.body_text())))?;
        let form = parse::<T>(&parts, &bytes, st).await.map_err(refuse)?;
        let Token { csrf_token } = parse::<Token>(&parts, &bytes, st).await.map_err(refuse)?;
        if !csrf::holds(st, &who.principal, &csrf_token) {
            return Err(refuse(ApiError::forbidden(
                "csrf",
                "this form has expired or did not come from this session; reload the page and try again",
            )));
        }
        Ok(CsrfForm(who, form))
    }
}

async fn parse<T: DeserializeOwned>(
    parts: &Parts,
    bytes: &Bytes,
    st: &AppState,
) -> Result<T, ApiError> {
    let again = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
    Form::<T>::from_request(again, st)
        .await
        .map(|Form(t)| t)
        .map_err(|e| unreadable(e.body_text()))
}
