//! axum's own refusals (a query string or path segment that does not
//! parse, a method the route does not serve) come as plain text or an
//! empty body. This layer gives them the one error shape,
//! `{"error":{"code","message"}}`, keeping their status and headers
//! (`Allow` on `405`), so every error a client sees is JSON. The relay
//! and inbound webhooks pass other servers' answers through untouched.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::json;

/// Longest plain-text rejection carried over as the message.
const MAX_MESSAGE: usize = 300;

/// Paths whose answers come from elsewhere and pass through as they are.
const PASS_THROUGH: &[&str] = &["/relay/", "/hooks/"];

pub async fn as_json(req: Request, next: Next) -> Response {
    let pass_through = PASS_THROUGH.iter().any(|p| req.uri().path().starts_with(p));
    let response = next.run(req).await;
    if pass_through {
        return response;
    }
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    let typed = response.headers().contains_key(header::CONTENT_TYPE)
        && !response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"));
    if !is_error || typed {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match body.collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let (code, fallback) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not serve that method",
        ),
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body is larger than 1 MiB"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "unsupported content type")
        }
        s if s.is_server_error() => ("internal", "internal error"),
        _ => ("bad_request", "the request could not be read"),
    };
    let message: String = if text.trim().is_empty() {
        fallback.to_string()
    } else {
        crate::json::redact_values(&text.trim().chars().take(MAX_MESSAGE).collect::<String>())
    };
    let body = json!({ "error": { "code": code, "message": message } }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}
