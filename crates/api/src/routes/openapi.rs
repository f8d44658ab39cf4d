//! `GET /v1/openapi.json`: the OpenAPI 3.1 document (`crate::openapi`),
//! built once and served as is.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};

pub async fn document() -> Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(|| crate::openapi::document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response()
}
