//! One module per console page; each calls `gatehouse_api::app`.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod entry;
pub mod secrets;
pub mod tokens;
pub mod upstreams;

use axum::extract::rejection::FormRejection;
use axum::Form;

use gatehouse_api::error::ApiError;

/// A form body, or the API's `400` for a malformed one.
pub fn form<T>(body: Result<Form<T>, FormRejection>) -> Result<T, ApiError> {
    body.map(|Form(t)| t).map_err(|e| unreadable(e.body_text()))
}

/// The API's `400` for a form body axum could not read, with its reason.
pub fn unreadable(reason: String) -> ApiError {
    ApiError::bad_request(format!("unreadable form: {reason}"))
}

/// A list typed into one field: items separated by commas or spaces.
pub fn list_field(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\r', '\t'])
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}
