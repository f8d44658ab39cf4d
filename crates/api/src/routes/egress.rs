//! The egress proxy's two API routes: the CA certificate clients must
//! trust for intercepted hosts (public: it is a certificate, not a
//! secret), and the relay (`ANY /relay/{host}/{*path}`), which hands the
//! request to the proxy engine. The relay's caller is a job: its token is
//! checked by the one verifier inside the engine's directory, and every
//! failure there is `401`.

use axum::body::Body as AxumBody;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::net::SocketAddr;

use crate::error::ApiError;
use crate::state::AppState;

/// Response header of the CA route naming the proxy's listen address.
pub const PROXY_HEADER: &str = "gatehouse-egress-proxy";

fn engine(st: &AppState) -> Result<&std::sync::Arc<gatehouse_egress::Engine>, ApiError> {
    st.egress
        .get()
        .ok_or_else(|| ApiError::internal("the egress proxy is not running"))
}

/// `GET /v1/egress/ca.pem`.
pub async fn ca_pem(State(st): State<AppState>) -> Result<Response, ApiError> {
    let ca = engine(&st)?
        .ca
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("TLS interception is off".into()))?;
    let mut resp = ca.ca_pem().to_string().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    // Where the proxy listens, so `gatehouse exec` needs one URL only.
    if let Some(addr) = st.egress_addr.get() {
        if let Ok(v) = HeaderValue::from_str(&addr.to_string()) {
            resp.headers_mut().insert(PROXY_HEADER, v);
        }
    }
    Ok(resp)
}

/// `ANY /relay/{host}/{*path}` → `https://{host}/{path}`.
pub async fn relay(
    State(st): State<AppState>,
    Path((host, _path)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let engine = engine(&st)?.clone();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(
        std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        |ConnectInfo(a)| a.ip(),
    );
    // The upstream path is the raw remainder after `/relay/{host}`, so
    // percent-encoding reaches the upstream exactly as the caller sent it.
    let raw = req.uri().path();
    let prefix_len = "/relay/".len() + raw["/relay/".len().min(raw.len())..].find('/').unwrap_or(0);
    let rest = &raw[prefix_len.min(raw.len())..];
    let rest = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let uri: Uri = path_and_query
        .parse()
        .map_err(|_| ApiError::bad_request("bad relay path"))?;
    let (mut parts, body) = req.into_parts();
    parts.uri = uri;
    let body = body
        .map_err(|e| -> gatehouse_egress::BoxError { Box::new(e) })
        .boxed_unsync();
    let resp = engine
        .relay(peer, &host, axum::http::Request::from_parts(parts, body))
        .await;
    let (parts, body) = resp.into_parts();
    let mut resp = Response::from_parts(parts, AxumBody::new(body));
    if resp.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"gatehouse\""),
        );
    }
    Ok(resp)
}
