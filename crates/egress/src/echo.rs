//! The echo guard: in traffic Gatehouse terminates, a real secret value
//! that comes back (an API echoing the `Authorization` it received, an
//! error page quoting a token) is replaced by the job's placeholder before
//! the agent sees it.
//!
//! Response headers are always scanned. A body is scanned when it is text
//! (`text/*`, JSON, XML, form, JavaScript) and not content-encoded: its
//! first [`BODY_SCAN_LIMIT`] bytes are read into one buffer (so a value
//! split across network reads is still found), rewritten, and sent on
//! before the rest streams through untouched. The forwarder asks upstream
//! for an identity encoding so that bodies stay readable here. Values
//! shorter than [`MIN_VALUE_LEN`] bytes are not scanned for: they would
//! rewrite ordinary text and no real credential is that short.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderValue, Response};
use http_body_util::{BodyExt, BodyStream, StreamBody};
use hyper::body::{Frame, Incoming};

use crate::directory::JobView;
use crate::swap::replace_all;
use crate::{Body, BoxError};

pub const BODY_SCAN_LIMIT: usize = 1024 * 1024;
pub const MIN_VALUE_LEN: usize = 4;
/// What stands in for a value granted without a placeholder.
const REDACTED: &[u8] = b"[redacted by gatehouse]";

/// `bytes` with every real value of the job replaced; `None` if none was
/// present.
pub fn guard_bytes(bytes: &[u8], view: &JobView) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for b in &view.bindings {
        let value = b.value.expose();
        if value.len() < MIN_VALUE_LEN {
            continue;
        }
        let with = b.placeholder.as_deref().map_or(REDACTED, str::as_bytes);
        let current = out.as_deref().unwrap_or(bytes);
        if let Some(new) = replace_all(current, value, with) {
            out = Some(new);
        }
    }
    out
}

pub fn guard_headers(headers: &mut HeaderMap, view: &JobView) {
    let mut rewritten = HeaderMap::with_capacity(headers.len());
    let mut changed = false;
    for (name, value) in headers.iter() {
        let v = match guard_bytes(value.as_bytes(), view) {
            Some(new) => {
                changed = true;
                HeaderValue::from_bytes(&new).unwrap_or_else(|_| HeaderValue::from_static(""))
            }
            None => value.clone(),
        };
        rewritten.append(name.clone(), v);
    }
    if changed {
        *headers = rewritten;
    }
}

fn is_text(headers: &HeaderMap) -> bool {
    let encoded = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"));
    if encoded {
        return false;
    }
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        // No type: could be anything a client will print; scan it.
        return true;
    };
    let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ct.starts_with("text/")
        || ct == "application/json"
        || ct.ends_with("+json")
        || ct == "application/xml"
        || ct.ends_with("+xml")
        || ct == "application/javascript"
        || ct == "application/x-www-form-urlencoded"
        || ct == "application/x-ndjson"
}

/// The upstream response made safe for the agent.
pub async fn guard_response(resp: Response<Incoming>, view: &JobView) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    guard_headers(&mut parts.headers, view);
    let has_values = view
        .bindings
        .iter()
        .any(|b| b.value.len() >= MIN_VALUE_LEN);
    if !has_values || !is_text(&parts.headers) {
        return Response::from_parts(parts, body.map_err(BoxError::from).boxed_unsync());
    }
    let mut stream = BodyStream::new(body);
    let mut head = BytesMut::new();
    let mut pending: Option<Frame<Bytes>> = None;
    let mut failed: Option<BoxError> = None;
    while head.len() < BODY_SCAN_LIMIT {
        match stream.next().await {
            None => break,
            Some(Err(e)) => {
                failed = Some(e.into());
                break;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => head.extend_from_slice(&data),
                Err(trailers) => {
                    pending = Some(trailers);
                    break;
                }
            },
        }
    }
    let head = match guard_bytes(&head, view) {
        Some(new) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Bytes::from(new)
        }
        None => head.freeze(),
    };
    let first = futures_util::stream::iter(
        std::iter::once(Ok::<_, BoxError>(Frame::data(head)))
            .chain(pending.map(Ok))
            .chain(failed.map(Err)),
    );
    let rest = stream.map(|r| r.map_err(BoxError::from));
    let body = StreamBody::new(first.chain(rest));
    Response::from_parts(parts, BodyExt::boxed_unsync(body))
}
