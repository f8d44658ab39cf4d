//! The one error type of the HTTP API. Every variant maps to its status
//! explicitly (no catch-all arm), so a new variant forces a decision.
//! Internal failures answer a generic message with a correlation id and
//! are logged in full; callers never see backend text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use gatehouse_domain::principal::AccessDenied;
use gatehouse_store::StoreError;

#[derive(Debug)]
pub enum ApiError {
    /// Malformed request: bad JSON, wrong types, bad names.
    BadRequest {
        code: &'static str,
        message: String,
    },
    /// Missing, invalid, expired or revoked credential.
    Unauthenticated,
    Forbidden {
        code: &'static str,
        message: String,
    },
    NotFound(String),
    Conflict(String),
    /// Well-formed but refers to something that does not exist or fits.
    Unprocessable {
        code: &'static str,
        message: String,
    },
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests {
        retry_after: u64,
    },
    /// The store or the revocation view cannot be trusted right now.
    Unavailable(String),
    Internal {
        reference: String,
    },
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            code: "bad_request",
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }

    /// Logs the cause under a fresh reference and hides it from the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let reference = gatehouse_domain::codes::random_id();
        tracing::error!(reference = %reference, "internal error: {cause}");
        Self::Internal { reference }
    }

    /// The error code a caller would see.
    pub fn code(&self) -> &'static str {
        self.parts().1
    }

    /// The status a caller would get.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The message a caller would see.
    pub fn message(&self) -> String {
        self.parts().2
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message.clone()),
            Self::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "missing, invalid, expired or revoked credential".into(),
            ),
            Self::Forbidden { code, message } => (StatusCode::FORBIDDEN, code, message.clone()),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone()),
            Self::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone()),
            Self::Unprocessable { code, message } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, message.clone())
            }
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is larger than 1 MiB".into(),
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json".into(),
            ),
            Self::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "too many failed attempts; try again later".into(),
            ),
            Self::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m.clone()),
            Self::Internal { reference } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("internal error (reference {reference})"),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let body = json!({ "error": { "code": code, "message": message } });
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthenticated => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"gatehouse\""),
                );
            }
            Self::TooManyRequests { retry_after } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        response
    }
}

impl From<AccessDenied> for ApiError {
    fn from(d: AccessDenied) -> Self {
        let code = match d {
            AccessDenied::InsufficientScope(_) => "insufficient_scope",
            AccessDenied::HumanSessionRequired => "human_session_required",
            AccessDenied::OperatorRequired => "operator_required",
            AccessDenied::ClassNotAdmitted(_) => "credential_class_not_admitted",
        };
        Self::forbidden(code, d.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(what.into()),
            StoreError::Unavailable(cause) => {
                tracing::warn!("store unavailable: {cause}");
                Self::Unavailable("the store is unavailable".into())
            }
            StoreError::Backend(_) | StoreError::Url(_) | StoreError::Migration(_) => {
                Self::internal(e)
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
