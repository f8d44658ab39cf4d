//! The JSON body extractor: content type required, size limited (413),
//! malformed JSON or wrong types answered 400 with serde's description of
//! *where* it went wrong, but never the offending value (it may be a
//! secret).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ApiError;

pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request("could not read the request body")
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// An optional integer as JSON Schema reads one: `600` and `600.0` alike
/// (the document says `integer`, and a generated client may send either);
/// a fraction or a value outside `i64` is a type error (400).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => {
            Ok(Some(f as i64))
        }
        _ => Err(D::Error::custom("expected a whole number")),
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "wrong field type or value",
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Eof => "truncated JSON",
            serde_json::error::Category::Io => "unreadable body",
        };
        ApiError::BadRequest {
            code: "bad_request",
            message: format!("{what}: {}", redact_values(&e.to_string())),
        }
    })
}

/// Keeps serde's structure (field names in backticks, line and column) and
/// drops every quoted value and number it echoes.
pub(crate) fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                for d in chars.by_ref() {
                    if d == '"' {
                        break;
                    }
                }
                out.push_str("\"…\"");
            }
            '`' => {
                let inner: String = chars.by_ref().take_while(|d| *d != '`').collect();
                let is_field = inner
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.')
                    && inner
                        .chars()
                        .next()
                        .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_');
                if is_field {
                    out.push('`');
                    out.push_str(&inner);
                    out.push('`');
                } else {
                    out.push_str("`…`");
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        value: String,
        count: Option<u8>,
    }

    fn message(json: &str) -> String {
        match parse::<Body>(json.as_bytes()) {
            Err(ApiError::BadRequest { message, .. }) => message,
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_fields_but_never_echo_values() {
        let m = message(r#"{"value": 12345678}"#);
        assert!(!m.contains("12345678"), "{m}");
        let m = message(r#"{"value": "x", "count": "ghp_supersecret"}"#);
        assert!(!m.contains("ghp_supersecret"), "{m}");
        let m = message(r#"{"value": "x", "count": 999999}"#);
        assert!(!m.contains("999999"), "{m}");
        let m = message(r#"{"valu": "ghp_secret"}"#);
        assert!(m.contains("valu") && !m.contains("ghp_secret"), "{m}");
        let m = message(r#"{"count": 1}"#);
        assert!(m.contains("`value`"), "{m}");
        assert!(message("{").contains("JSON"));
    }
}
