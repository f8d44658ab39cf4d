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
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
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

/// The length of the job's shortest value the guard looks for, if any.
fn shortest_value(view: &JobView) -> Option<usize> {
    view.bindings
        .iter()
        .map(|b| b.value.len())
        .filter(|&len| len >= MIN_VALUE_LEN)
        .min()
}

pub fn guard_headers(headers: &mut HeaderMap, view: &JobView) {
    // A header shorter than every value cannot hold one; a value that
    // holds one is replaced where it stands (names, order and the other
    // values untouched).
    let Some(shortest) = shortest_value(view) else {
        return;
    };
    for value in headers.values_mut() {
        if value.len() < shortest {
            continue;
        }
        if let Some(new) = guard_bytes(value.as_bytes(), view) {
            *value = HeaderValue::from_bytes(&new).unwrap_or_else(|_| HeaderValue::from_static(""));
        }
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
    let ct = ct.split(';').next().unwrap_or("").trim();
    let is = |name: &str| ct.eq_ignore_ascii_case(name);
    let ends = |suffix: &str| {
        ct.len() >= suffix.len()
            && ct.as_bytes()[ct.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    ct.get(..5).is_some_and(|t| t.eq_ignore_ascii_case("text/"))
        || is("application/json")
        || ends("+json")
        || is("application/xml")
        || ends("+xml")
        || is("application/javascript")
        || is("application/x-www-form-urlencoded")
        || is("application/x-ndjson")
}

/// A body's first bytes, read frame by frame: one frame (the common
/// case) is kept as it came, more are joined.
#[derive(Default)]
struct Gathered {
    first: Option<Bytes>,
    joined: BytesMut,
}

impl Gathered {
    fn push(&mut self, data: Bytes) {
        match self.first.take() {
            None if self.joined.is_empty() => self.first = Some(data),
            first => {
                if let Some(first) = first {
                    self.joined.extend_from_slice(&first);
                }
                self.joined.extend_from_slice(&data);
            }
        }
    }

    fn len(&self) -> usize {
        self.first.as_ref().map_or(self.joined.len(), Bytes::len)
    }

    fn into_bytes(self) -> Bytes {
        self.first.unwrap_or_else(|| self.joined.freeze())
    }
}

fn whole(parts: http::response::Parts, body: Bytes) -> Response<Body> {
    let body = Full::new(body).map_err(|never| match never {});
    Response::from_parts(parts, body.boxed_unsync())
}

/// The upstream response made safe for the agent.
pub async fn guard_response(resp: Response<Incoming>, view: &JobView) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    guard_headers(&mut parts.headers, view);
    if shortest_value(view).is_none() || !is_text(&parts.headers) {
        return Response::from_parts(parts, body.map_err(BoxError::from).boxed_unsync());
    }
    let mut stream = BodyStream::new(body);
    let mut head = Gathered::default();
    let mut pending: Option<Frame<Bytes>> = None;
    let mut failed: Option<BoxError> = None;
    let mut ended = false;
    while head.len() < BODY_SCAN_LIMIT {
        match stream.next().await {
            None => {
                ended = true;
                break;
            }
            Some(Err(e)) => {
                failed = Some(e.into());
                break;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => head.push(data),
                Err(trailers) => {
                    pending = Some(trailers);
                    break;
                }
            },
        }
    }
    let head = head.into_bytes();
    let rewritten = guard_bytes(&head, view);
    // The whole body is here: it is sent in one piece with its length, so
    // head and body leave together rather than as a stream and a closing
    // chunk. Unchanged, only when its declared length is the one read (a
    // HEAD or 304 answer declares the length of a body it does not carry).
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match rewritten {
        Some(new) if ended => {
            parts.headers.remove(header::TRANSFER_ENCODING);
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(new.len()));
            return whole(parts, Bytes::from(new));
        }
        None if ended && declared == Some(head.len()) => return whole(parts, head),
        _ => {}
    }
    let head = match rewritten {
        Some(new) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Bytes::from(new)
        }
        None => head,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Binding;
    use gatehouse_domain::secret::SecretBytes;
    use proptest::prelude::*;

    const PH: &str = "gh_ph_1111111111111111111111111111111111111111";

    fn view(values: &[(&str, Option<&str>)]) -> JobView {
        JobView {
            agent_allow_hosts: None,
            allow_hosts: vec![],
            bindings: values
                .iter()
                .map(|(v, ph)| Binding {
                    secret: "s".into(),
                    placeholder: ph.map(str::to_string),
                    placeholder_expires_at: i64::MAX,
                    allowed_hosts: vec![],
                    value: SecretBytes::new(v.as_bytes().to_vec()),
                    inject: None,
                })
                .collect(),
        }
    }

    #[test]
    fn values_become_placeholders_or_a_redaction_mark() {
        let v = view(&[
            ("s3cr3t-value", Some(PH)),
            ("other-value", None),
            ("ab", Some(PH)),
        ]);
        let out = guard_bytes(b"x s3cr3t-value y other-value ab", &v).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("x {PH} y [redacted by gatehouse] ab")
        );
        assert_eq!(guard_bytes(b"nothing here", &v), None);
    }

    #[test]
    fn headers_are_rewritten_and_text_types_recognised() {
        let v = view(&[("s3cr3t-value", Some(PH))]);
        let mut h = HeaderMap::new();
        h.append("x-echo", HeaderValue::from_static("Bearer s3cr3t-value"));
        h.append("x-echo", HeaderValue::from_static("plain"));
        h.append("x-other", HeaderValue::from_static("short"));
        h.append("x-echo", HeaderValue::from_static("again s3cr3t-value"));
        guard_headers(&mut h, &v);
        let all: Vec<_> = h.get_all("x-echo").iter().collect();
        assert_eq!(
            all,
            vec![
                format!("Bearer {PH}").as_str(),
                "plain",
                format!("again {PH}").as_str()
            ]
        );
        assert_eq!(h.get("x-other").unwrap(), "short");
        for (ct, text) in [
            ("application/json; charset=utf-8", true),
            ("text/html", true),
            ("application/problem+json", true),
            ("image/png", false),
            ("application/octet-stream", false),
            // Media types are case-insensitive; short or odd ones are not text.
            ("TEXT/Plain", true),
            ("Application/JSON", true),
            ("application/vnd.api+JSON ; q=1", true),
            ("APPLICATION/X-NDJSON", true),
            ("application/soap+xml", true),
            ("text", false),
            ("json", false),
            ("application/jsonp", false),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            assert_eq!(is_text(&h), text, "{ct}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(!is_text(&h));
    }

    proptest! {
        #[test]
        fn a_guarded_body_never_holds_the_value(
            parts in proptest::collection::vec("[a-z {}\":,]{0,30}", 1..6),
            value in "[0-9]{4,24}",
        ) {
            let body = parts.join(&value);
            let v = view(&[(&value, Some(PH))]);
            let out = guard_bytes(body.as_bytes(), &v).unwrap_or_else(|| body.clone().into_bytes());
            prop_assert!(crate::swap::find_all(&out, value.as_bytes()).is_empty());
            prop_assert_eq!(
                crate::swap::find_all(&out, PH.as_bytes()).len(),
                parts.len() - 1
            );
        }
    }
}
