//! Who is looking at a console page: the one `Principal` extractor (the
//! one token verifier, then the route's rule), with its failures turned
//! into what a browser should see: no or a dead session → the sign-in
//! page; anything else → an error page with the API's status and message.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use gatehouse_api::error::ApiError;
use gatehouse_api::state::AppState;
use gatehouse_domain::Principal;

use crate::csrf;
use crate::layout;

/// A person signed in to the console, with the CSRF token of their
/// session for the page's forms.
pub struct Human {
    pub principal: Principal,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Human {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        match Principal::from_request_parts(parts, st).await {
            Ok(principal) => Ok(Human {
                csrf: csrf::token(st, &principal),
                principal,
            }),
            Err(ApiError::Unauthenticated) => Err(see_other("/login")),
            Err(e) => Err(layout::error_page(None, &e)),
        }
    }
}

/// `303 See Other`: after a form, the browser fetches the next page.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}
