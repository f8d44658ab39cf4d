//! A random id per request, returned as `X-Request-Id` and written into
//! every audit record the request causes, so logs and audit line up.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::convert::Infallible;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Gives the request its id, and serves it inside a `request` span
/// carrying `request_id`, so every log line written for it names it; one
/// line a request says how it ended (route template, never the raw path).
pub async fn assign(mut req: Request, next: Next) -> Response {
    let id = RequestId(gatehouse_domain::codes::random_id());
    req.extensions_mut().insert(id.clone());
    let span = tracing::info_span!("request", request_id = %id.0);
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            route = crate::metrics::route_of(&response).unwrap_or("unmatched"),
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request finished"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(gatehouse_domain::codes::random_id())))
    }
}
