//! Every way the proxy says no, and the one place it becomes HTTP.
//!
//! Refusals answer `403` with `X-Gatehouse-Deny: <reason>` (`ssrf`,
//! `not_allowed`, `judge`, `throttled`) and a JSON body
//! `{"error":{"code","message"}}`; a malformed target is `400`, a missing
//! or bad proxy credential `407` with `Proxy-Authenticate`, too many
//! failed placeholder resolutions `429`. Messages name the host or the
//! rule, never a secret or a token.

use bytes::Bytes;
use gatehouse_domain::egress::{Deny, TargetError};
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::Body;

pub const DENY_HEADER: &str = "x-gatehouse-deny";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No usable proxy credential.
    ProxyAuth,
    /// No usable job token on the relay route (`401`).
    RelayAuth,
    /// The revocation view is stale: every token is refused.
    Unavailable,
    /// The target does not parse, or the request is not a proxy request.
    Malformed(String),
    /// The address check said no.
    Target(Deny),
    /// Not on the job's allow list.
    HostNotAllowed(String),
    /// A placeholder sent towards a host it is not bound to.
    PlaceholderNotAllowed { host: String },
    /// A placeholder that is not this job's, or has expired.
    ForeignPlaceholder,
    /// A placeholder in a plain `http://` request: swapping it would send
    /// the real value in clear text.
    PlaceholderInClearText { host: String },
    /// The job's credentials do not resolve (owner unknown, a granted
    /// secret gone, a grant missing, a value that does not decrypt, an
    /// expired placeholder): the same uniform refusal as
    /// `GET /v1/job/credentials`, for every request of the job.
    NoCredentials,
    /// The judge denied (or could not be asked).
    Judge(String),
    /// Too many failed placeholder resolutions from this source.
    Throttled { retry_after: u64 },
    /// The job already holds `egress.max_connections_per_job` open
    /// connections.
    TooManyConnections { limit: usize },
    /// The upstream could not be reached or answered garbage.
    BadGateway(String),
    /// A failure of ours; logged, answered generically.
    Internal(String),
}

impl Refusal {
    /// The `X-Gatehouse-Deny` value, for refusals that have one.
    pub fn deny_reason(&self) -> Option<&'static str> {
        match self {
            Self::Target(d) => Some(d.header_value()),
            Self::HostNotAllowed(_)
            | Self::PlaceholderNotAllowed { .. }
            | Self::ForeignPlaceholder
            | Self::PlaceholderInClearText { .. }
            | Self::NoCredentials => Some("not_allowed"),
            Self::Judge(_) => Some("judge"),
            Self::Throttled { .. } | Self::TooManyConnections { .. } => Some("throttled"),
            Self::ProxyAuth
            | Self::RelayAuth
            | Self::Unavailable
            | Self::Malformed(_)
            | Self::BadGateway(_)
            | Self::Internal(_) => None,
        }
    }

    /// Whether this refusal is a failed placeholder resolution (counted
    /// towards the per-source limit). A job whose credentials do not
    /// resolve is not: that is its owner's doing, not a guess.
    pub fn is_placeholder_failure(&self) -> bool {
        matches!(
            self,
            Self::PlaceholderNotAllowed { .. }
                | Self::ForeignPlaceholder
                | Self::PlaceholderInClearText { .. }
        )
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::ProxyAuth => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            Self::RelayAuth => StatusCode::UNAUTHORIZED,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Target(_)
            | Self::HostNotAllowed(_)
            | Self::PlaceholderNotAllowed { .. }
            | Self::ForeignPlaceholder
            | Self::PlaceholderInClearText { .. }
            | Self::NoCredentials
            | Self::Judge(_) => StatusCode::FORBIDDEN,
            Self::Throttled { .. } | Self::TooManyConnections { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The refusal's code: a closed set, also the proxy metrics' outcome.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ProxyAuth => "proxy_auth_required",
            Self::RelayAuth => "unauthenticated",
            Self::Unavailable => "unavailable",
            Self::Malformed(_) => "bad_request",
            Self::Target(_) => "ssrf",
            Self::HostNotAllowed(_)
            | Self::PlaceholderNotAllowed { .. }
            | Self::PlaceholderInClearText { .. } => "not_allowed",
            Self::ForeignPlaceholder | Self::NoCredentials => "forbidden",
            Self::Judge(_) => "judge",
            Self::Throttled { .. } | Self::TooManyConnections { .. } => "throttled",
            Self::BadGateway(_) => "bad_gateway",
            Self::Internal(_) => "internal",
        }
    }

    /// The human-readable reason (never a secret or a token).
    pub fn message(&self) -> String {
        match self {
            Self::ProxyAuth => {
                "proxy credentials required: Proxy-Authorization Basic job:<job token> or Bearer <job token>".into()
            }
            Self::RelayAuth => "a job token is required: Authorization: Bearer <job token> or X-Gatehouse-Job-Token".into(),
            Self::Unavailable => "revocation state cannot be confirmed; refusing all tokens".into(),
            Self::Malformed(m) => m.clone(),
            Self::Target(d) => format!("target refused: {d}"),
            Self::HostNotAllowed(h) => format!("host {h} is not on this job's allow list"),
            Self::PlaceholderNotAllowed { host } => {
                format!("a placeholder in this request is not bound to host {host}")
            }
            Self::ForeignPlaceholder => {
                "a placeholder in this request is not this job's, or has expired".into()
            }
            Self::PlaceholderInClearText { host } => format!(
                "a placeholder is swapped only over TLS that Gatehouse verifies \
                 (https:// through the proxy, or the relay), never in plain http:// to {host}"
            ),
            Self::NoCredentials => "no credentials are available to this job".into(),
            Self::Judge(m) => format!("the egress judge refused: {m}"),
            Self::Throttled { retry_after } => {
                format!("too many failed placeholder uses; retry in {retry_after} s")
            }
            Self::TooManyConnections { limit } => format!(
                "this job already holds {limit} open connections through the proxy; close one first"
            ),
            Self::BadGateway(m) => format!("upstream: {m}"),
            Self::Internal(_) => "internal error".into(),
        }
    }

    /// The audit outcome, `denied:<code>`.
    pub fn audit_outcome(&self) -> String {
        format!(
            "denied:{}",
            self.deny_reason().unwrap_or_else(|| self.code())
        )
    }

    pub fn into_response(self) -> Response<Body> {
        if let Self::Internal(detail) = &self {
            tracing::error!("egress proxy: {detail}");
        }
        let body = serde_json::json!({
            "error": {"code": self.code(), "message": self.message()}
        });
        let mut resp = Response::new(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
        *resp.status_mut() = self.status();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(reason) = self.deny_reason() {
            headers.insert(DENY_HEADER, HeaderValue::from_static(reason));
        }
        match &self {
            Self::ProxyAuth => {
                headers.insert(
                    header::PROXY_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"gatehouse\""),
                );
            }
            Self::Throttled { retry_after } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        resp
    }
}

impl From<crate::directory::AuthFailure> for Refusal {
    fn from(e: crate::directory::AuthFailure) -> Self {
        match e {
            crate::directory::AuthFailure::Refused => Self::ProxyAuth,
            crate::directory::AuthFailure::Unavailable => Self::Unavailable,
        }
    }
}

impl From<TargetError> for Refusal {
    fn from(e: TargetError) -> Self {
        Self::Malformed(format!("malformed target: {e}"))
    }
}

impl From<Deny> for Refusal {
    fn from(d: Deny) -> Self {
        Self::Target(d)
    }
}
