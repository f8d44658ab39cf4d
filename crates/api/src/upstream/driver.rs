//! The driver seam: everything the rotation needs from an upstream, as
//! three calls. A new upstream kind is a new [`UpstreamDriver`]; the
//! rotation (`rotation.rs`) and bootstrap never change for it.
//!
//! Errors carry status codes and short descriptions only: an upstream's
//! answer may echo a token, so no response text ever reaches an error, a
//! log or an audit record.

use async_trait::async_trait;
use gatehouse_domain::egress::outbound::Origin;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::SecretBytes;

/// Who a token belongs to, as the upstream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    /// The id of the very token that asked, when the upstream tells.
    pub token_id: Option<String>,
}

/// A token the upstream minted for Gatehouse.
pub struct MintedToken {
    pub token_id: String,
    pub value: SecretBytes,
    /// When the upstream said; otherwise Gatehouse assumes now + lifetime.
    pub expires_at: Option<UnixTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The upstream refused the credential (401 or 403).
    #[error("the upstream refused the credential ({0})")]
    Refused(u16),
    /// The thing asked about does not exist (404): for a revocation, the
    /// token is already gone (an earlier attempt whose answer was lost).
    #[error("not found at the upstream (404)")]
    NotFound,
    /// The upstream answered, but not as expected.
    #[error("unexpected upstream answer: {0}")]
    Upstream(String),
    /// No answer (connection, timeout).
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
}

#[async_trait]
pub trait UpstreamDriver: Send + Sync {
    /// Who owns `token`, asking with that token and nothing else.
    async fn whoami(&self, token: &SecretBytes) -> Result<Identity, DriverError>;
    /// Mints a token living `lifetime_seconds`, authenticated by `auth`.
    async fn mint(
        &self,
        auth: &SecretBytes,
        lifetime_seconds: i64,
    ) -> Result<MintedToken, DriverError>;
    /// Revokes the token `token_id`, authenticated by `auth`.
    async fn revoke(&self, auth: &SecretBytes, token_id: &str) -> Result<(), DriverError>;
    /// The id of `token` itself, when the upstream lets one find it
    /// (needed to revoke a pasted token). `None`: cannot tell.
    async fn own_token_id(&self, token: &SecretBytes) -> Result<Option<String>, DriverError>;
}

/// Largest upstream answer read.
const MAX_ANSWER: usize = 1024 * 1024;

/// One authenticated JSON call; the credential header is marked
/// sensitive, and nothing of the answer is kept but its parsed JSON.
pub(crate) async fn call(
    http: &gatehouse_egress::OutboundClient,
    method: &str,
    url: &str,
    auth: (&str, String),
    body: Option<Value>,
) -> Result<Value, DriverError> {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| DriverError::Upstream("bad method".into()))?;
    let mut headers = HeaderMap::new();
    let name = HeaderName::from_bytes(auth.0.as_bytes())
        .map_err(|_| DriverError::Upstream("bad auth header name".into()))?;
    let mut value = HeaderValue::from_str(&zeroize::Zeroizing::new(auth.1))
        .map_err(|_| DriverError::Upstream("the token cannot be sent in a header".into()))?;
    value.set_sensitive(true);
    headers.insert(name, value);
    // The operator configured base_url: any port, the address rule and
    // the own-listener rule still apply (§12).
    let mut request = http
        .request(method, url, Origin::Operator)
        .await
        .map_err(|e| DriverError::Unreachable(format!("refused: {}", e.reason())))?
        .headers(headers);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request
        .send()
        .await
        .map_err(|e| DriverError::Unreachable(short_reqwest_error(&e)))?;
    let status = response.status().as_u16();
    if status == 401 || status == 403 {
        return Err(DriverError::Refused(status));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| DriverError::Unreachable(short_reqwest_error(&e)))?;
    if status == 404 {
        return Err(DriverError::NotFound);
    }
    if !(200..300).contains(&status) {
        return Err(DriverError::Upstream(format!("status {status}")));
    }
    if bytes.len() > MAX_ANSWER {
        return Err(DriverError::Upstream("answer too large".into()));
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let parsed = serde_json::from_slice(&bytes)
        .map_err(|_| DriverError::Upstream("answer is not JSON".into()));
    // The raw answer may hold a token: wipe it.
    let mut raw = Vec::from(bytes);
    zeroize::Zeroize::zeroize(&mut raw);
    parsed
}

/// A reqwest error without its URL (which may carry a token id).
fn short_reqwest_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

/// Takes the string at `pointer` out of `v` into a zeroizing buffer.
pub(crate) fn take_secret(v: &mut Value, pointer: &str) -> Option<SecretBytes> {
    match v.pointer_mut(pointer).map(Value::take) {
        Some(Value::String(s)) if !s.is_empty() => Some(SecretBytes::from_string(s)),
        _ => None,
    }
}

/// An id or name at `pointer`: a string, or a number written as one.
pub(crate) fn text_at(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A time at `pointer`, as Unix seconds or milliseconds (told apart by
/// size: no expiry in seconds is past the year 5000).
pub(crate) fn time_at(v: &Value, pointer: &str) -> Option<UnixTime> {
    let n = match v.pointer(pointer)? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    if n <= 0 {
        None
    } else if n > 100_000_000_000 {
        Some(n / 1000)
    } else {
        Some(n)
    }
}

/// The token as UTF-8 text, for a header.
pub(crate) fn token_text(token: &SecretBytes) -> Result<&str, DriverError> {
    token
        .expose_str()
        .ok_or_else(|| DriverError::Upstream("the token is not text".into()))
}
