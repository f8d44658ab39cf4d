//! The upstream side of the gateway: rmcp's Streamable HTTP client
//! transport over Gatehouse's one outbound client (SPEC §12).
//!
//! rmcp ships a transport over its own reqwest client (0.13); Gatehouse
//! makes every outbound request through `gatehouse_egress::OutboundClient`
//! (reqwest 0.12, address pinning, no redirects, no system proxy). Rather
//! than a second HTTP client, [`OutboundHttp`] implements rmcp's
//! `StreamableHttpClient` trait over the one client: every HTTP request
//! of an upstream session (each POST, the closing DELETE) is checked
//! afresh (`request_tls`: the §6 address rule, the operator's exceptions,
//! never our own listeners, `https` unless every address is in
//! `egress.allow_private_cidrs`), so a URL whose name now resolves
//! somewhere else is refused at the next message. The owner's secret is
//! added here, as the configured header, and nowhere else: the agent's
//! side never sees it. The standalone server-to-client `GET` stream is not
//! opened (the gateway forwards requests and their answers only).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use http::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use sse_stream::{Error as SseError, Sse, SseStream};
use thiserror::Error;
use zeroize::Zeroizing;

use gatehouse_domain::egress::outbound::Origin;
use gatehouse_egress::{OutboundClient, OutboundError};

const SESSION_HEADER: &str = "mcp-session-id";
const EVENT_STREAM: &str = "text/event-stream";
const JSON: &str = "application/json";
/// Largest JSON answer read from an upstream.
const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

/// Why an upstream request failed. Never holds the owner's secret: the
/// header is added to the request only, and reqwest's errors name the
/// URL, not headers.
#[derive(Debug, Error)]
pub enum UpstreamHttpError {
    /// Refused by the one outbound client (`ssrf`, `own_listener`,
    /// `port`, `plain_http`, ...).
    #[error("the upstream URL is refused ({reason}): {source}", reason = .source.reason())]
    Refused {
        #[from]
        source: OutboundError,
    },
    #[error("the upstream did not answer: {0}")]
    Http(String),
    #[error("the upstream answered HTTP {0}")]
    Status(u16),
    #[error("the upstream's answer is larger than {MAX_JSON_BYTES} bytes")]
    TooLarge,
}

fn http_error(e: reqwest::Error) -> StreamableHttpError<UpstreamHttpError> {
    StreamableHttpError::Client(UpstreamHttpError::Http(e.without_url().to_string()))
}

fn client_error(e: impl Into<UpstreamHttpError>) -> StreamableHttpError<UpstreamHttpError> {
    StreamableHttpError::Client(e.into())
}

/// The owner's auth header, rendered: a value that never prints.
pub struct AuthHeader {
    name: HeaderName,
    value: Zeroizing<String>,
}

impl AuthHeader {
    pub fn new(name: &str, value: Zeroizing<String>) -> Option<Self> {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        HeaderValue::from_str(&value).ok()?;
        Some(Self { name, value })
    }
}

impl std::fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthHeader({}: ********)", self.name)
    }
}

/// rmcp's HTTP client trait over the one outbound client.
#[derive(Clone)]
pub struct OutboundHttp {
    outbound: Arc<OutboundClient>,
    auth: Option<Arc<AuthHeader>>,
}

impl OutboundHttp {
    pub fn new(outbound: Arc<OutboundClient>, auth: Option<AuthHeader>) -> Self {
        Self {
            outbound,
            auth: auth.map(Arc::new),
        }
    }

    async fn request(
        &self,
        method: reqwest::Method,
        uri: &str,
        session_id: Option<&str>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<reqwest::RequestBuilder, StreamableHttpError<UpstreamHttpError>> {
        let mut request = self
            .outbound
            .request_tls(method, uri, Origin::User)
            .await
            .map_err(client_error)?;
        for (name, value) in custom_headers {
            // The owner's header is ours to set, never the transport's.
            if self.auth.as_ref().is_some_and(|a| a.name == name) {
                continue;
            }
            request = request.header(name, value);
        }
        if let Some(id) = session_id {
            request = request.header(SESSION_HEADER, id);
        }
        if let Some(auth) = &self.auth {
            let mut value = HeaderValue::from_str(&auth.value).map_err(|_| {
                StreamableHttpError::UnexpectedServerResponse("bad auth header".into())
            })?;
            value.set_sensitive(true);
            request = request.header(auth.name.clone(), value);
        }
        Ok(request)
    }
}

fn content_type(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
}

/// The body as a stream of byte chunks (reqwest 0.12 without its
/// `stream` feature).
fn body_stream(resp: reqwest::Response) -> BoxStream<'static, Result<Bytes, reqwest::Error>> {
    stream::unfold(Some(resp), |resp| async move {
        let mut resp = resp?;
        match resp.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(resp))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
    .boxed()
}

fn sse_of(resp: reqwest::Response) -> BoxStream<'static, Result<Sse, SseError>> {
    SseStream::from_bytes_stream(body_stream(resp)).boxed()
}

async fn read_json(
    mut resp: reqwest::Response,
) -> Result<Vec<u8>, StreamableHttpError<UpstreamHttpError>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(http_error)? {
        if body.len() + chunk.len() > MAX_JSON_BYTES {
            return Err(client_error(UpstreamHttpError::TooLarge));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl StreamableHttpClient for OutboundHttp {
    type Error = UpstreamHttpError;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let body = serde_json::to_vec(&message)?;
        let request = self
            .request(
                reqwest::Method::POST,
                &uri,
                session_id.as_deref(),
                custom_headers,
            )
            .await?
            .header(reqwest::header::ACCEPT, format!("{EVENT_STREAM}, {JSON}"))
            .header(reqwest::header::CONTENT_TYPE, JSON)
            .body(body);
        let resp = request.send().await.map_err(http_error)?;
        let status = resp.status();
        if matches!(status.as_u16(), 202 | 204) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status.as_u16() == 404 && session_id.is_some() {
            return Err(StreamableHttpError::SessionExpired);
        }
        let new_session = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let kind = content_type(&resp);
        if !status.is_success() {
            // A JSON-RPC error carried on an error status is still an
            // answer; anything else is the status alone.
            if kind.as_deref() == Some(JSON) {
                let body = read_json(resp).await?;
                if let Ok(msg) = serde_json::from_slice::<ServerJsonRpcMessage>(&body) {
                    return Ok(StreamableHttpPostResponse::Json(msg, new_session));
                }
            }
            return Err(client_error(UpstreamHttpError::Status(status.as_u16())));
        }
        let answers_nothing = !matches!(message, ClientJsonRpcMessage::Request(_));
        match kind.as_deref() {
            Some(EVENT_STREAM) => Ok(StreamableHttpPostResponse::Sse(sse_of(resp), new_session)),
            Some(JSON) => {
                let body = read_json(resp).await?;
                if body.is_empty() && answers_nothing {
                    return Ok(StreamableHttpPostResponse::Accepted);
                }
                let msg: ServerJsonRpcMessage = serde_json::from_slice(&body)?;
                Ok(StreamableHttpPostResponse::Json(msg, new_session))
            }
            _ if answers_nothing => Ok(StreamableHttpPostResponse::Accepted),
            other => Err(StreamableHttpError::UnexpectedContentType(
                other.map(str::to_string),
            )),
        }
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let resp = self
            .request(
                reqwest::Method::DELETE,
                &uri,
                Some(&session_id),
                custom_headers,
            )
            .await?
            .send()
            .await
            .map_err(http_error)?;
        let status = resp.status();
        if status.is_success() || status.as_u16() == 405 || status.as_u16() == 404 {
            Ok(())
        } else {
            Err(client_error(UpstreamHttpError::Status(status.as_u16())))
        }
    }

    async fn get_stream(
        &self,
        _uri: Arc<str>,
        _session_id: Option<Arc<str>>,
        _last_event_id: Option<String>,
        _auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        Err(StreamableHttpError::ServerDoesNotSupportSse)
    }
}
