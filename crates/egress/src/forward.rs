//! Sending one request upstream, for the plain proxy, the interceptor and
//! the relay alike: hop-by-hop and proxy headers stripped, origin-form
//! URI, the response passed through the echo guard. Redirects are
//! returned to the client as they are: its next request comes back through
//! the proxy and is checked again.
//!
//! Two ways to prepare a request, by transport: [`prepare_tls`] swaps
//! placeholders and applies `inject` rules (`swap.rs`) and needs the
//! [`VerifiedTls`] proof a [`TlsUpstream`] carries; [`prepare_plain`], for
//! plain `http://`, refuses any placeholder and injects nothing.

use http::header::{self, HeaderName};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::directory::JobView;
use crate::refusal::Refusal;
use crate::tls::VerifiedTls;
use crate::{Body, Engine};

/// Headers that belong to one hop, never forwarded. Named headers, not
/// strings: removing one then costs no parsing. A `static`, so using it
/// builds nothing.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// `name`'s place in [`HOP_BY_HOP`], if it is one (a match on the text
/// is a length switch and one comparison, cheaper than comparing names).
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    let i = match name.as_str() {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-authenticate" => 2,
        "proxy-authorization" => 3,
        "proxy-connection" => 4,
        "te" => 5,
        "trailer" => 6,
        "upgrade" => 7,
        _ => return None,
    };
    debug_assert_eq!(HOP_BY_HOP[i], name);
    Some(i)
}

pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass notes which are present; only those are removed (a proxied
    // request always carries `Proxy-Authorization`, seldom anything else).
    let mut present = [false; HOP_BY_HOP.len()];
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present[i] = true;
        }
    }
    if !present.contains(&true) {
        return;
    }
    // Headers `Connection` (first in the list) names are hop-by-hop only
    // when it is there.
    if present[0] {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for n in named {
            headers.remove(n);
        }
    }
    for (name, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, p)| *p) {
        headers.remove(name);
    }
}

/// Makes `req` ready for `host_header` at the origin: origin-form URI,
/// hop-by-hop headers gone, identity encoding (so the echo guard can read
/// the body). Returns the request target.
fn normalise(req: &mut Request<Body>, host_header: &str) -> Result<PathAndQuery, Refusal> {
    let path = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let mut origin_form = http::uri::Parts::default();
    origin_form.path_and_query = Some(path.clone());
    *req.uri_mut() =
        Uri::from_parts(origin_form).map_err(|_| Refusal::Malformed("bad request path".into()))?;
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    headers.remove(header::ACCEPT_ENCODING);
    // Clients send the target's authority as `Host`: then it stays.
    let mut hosts = headers.get_all(header::HOST).iter();
    let same_host = hosts
        .next()
        .is_some_and(|h| h.as_bytes() == host_header.as_bytes())
        && hosts.next().is_none();
    if !same_host {
        headers.insert(
            header::HOST,
            HeaderValue::from_str(host_header)
                .map_err(|_| Refusal::Malformed("bad Host".into()))?,
        );
    }
    Ok(path)
}

/// A request for an upstream reached over TLS Gatehouse verified
/// (`over`): placeholders swapped, inject rules applied. Returns the
/// secrets put in.
pub(crate) fn prepare_tls(
    engine: &Engine,
    req: &mut Request<Body>,
    host: &str,
    host_header: &str,
    view: &JobView,
    over: &VerifiedTls,
) -> Result<Vec<String>, Refusal> {
    let path = normalise(req, host_header)?;
    let (prefix, now) = (&engine.settings.placeholder_prefix, engine.clock.now());
    crate::swap::check_target_text(path.as_str(), view, host, prefix, now)?;
    crate::swap::apply(req.headers_mut(), view, host, prefix, now, over)
}

/// A plain `http://` request: refused if it carries any placeholder,
/// never given an injected header.
pub(crate) fn prepare_plain(
    engine: &Engine,
    req: &mut Request<Body>,
    host: &str,
    host_header: &str,
    view: &JobView,
) -> Result<(), Refusal> {
    let path = normalise(req, host_header)?;
    crate::swap::refuse_in_clear(
        req.headers(),
        path.as_str(),
        view,
        host,
        &engine.settings.placeholder_prefix,
        engine.clock.now(),
    )
}

/// An HTTP/1.1 connection to an upstream over TLS verified for the
/// admitted target: the only connection a swapped request is sent on.
pub(crate) struct TlsUpstream {
    sender: SendRequest<Body>,
    verified: VerifiedTls,
}

impl TlsUpstream {
    /// TLS to an admitted target: the socket to a checked address, the
    /// certificate checked against the target's host.
    pub(crate) async fn connect(
        engine: &Engine,
        admitted: &crate::Admitted,
    ) -> Result<Self, Refusal> {
        let tcp = crate::admit::dial(&admitted.addrs).await?;
        let (tls, verified) =
            crate::tls::connect(engine.upstream_tls.clone(), admitted.target.host(), tcp)
                .await
                .map_err(|e| Refusal::BadGateway(format!("TLS to {}: {e}", admitted.host)))?;
        Ok(Self {
            sender: handshake(tls).await?,
            verified,
        })
    }

    pub(crate) fn verified(&self) -> &VerifiedTls {
        &self.verified
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    pub(crate) async fn send(&mut self, req: Request<Body>) -> Result<Response<Incoming>, Refusal> {
        send(&mut self.sender, req).await
    }
}

/// One HTTP/1.1 connection over `io`.
pub(crate) async fn handshake<IO>(io: IO) -> Result<SendRequest<Body>, Refusal>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Refusal::BadGateway(format!("handshake: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("upstream connection ended: {e}");
        }
    });
    Ok(sender)
}

pub(crate) async fn send(
    sender: &mut SendRequest<Body>,
    req: Request<Body>,
) -> Result<Response<Incoming>, Refusal> {
    sender
        .ready()
        .await
        .map_err(|e| Refusal::BadGateway(format!("upstream closed: {e}")))?;
    sender
        .send_request(req)
        .await
        .map_err(|e| Refusal::BadGateway(format!("upstream: {e}")))
}

/// The response for the agent: hop-by-hop headers gone, echo guard on.
pub(crate) async fn respond(resp: Response<Incoming>, view: &JobView) -> Response<Body> {
    let mut resp = crate::echo::guard_response(resp, view).await;
    strip_hop_by_hop(resp.headers_mut());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_stripped_and_nothing_else() {
        let mut h = headers(&[
            ("connection", "close, x-hop"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic am9iOnRva2Vu"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("upgrade", "h2c"),
            ("proxy-authenticate", "Basic"),
            ("x-hop", "1"),
            ("authorization", "Bearer mine"),
            ("x-end", "2"),
        ]);
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["authorization", "x-end"]);

        // Without `Connection`, a header it would have named is end to end.
        let mut h = headers(&[("x-hop", "1"), ("accept", "*/*")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 2);
        let mut h = headers(&[("proxy-authorization", "Bearer t"), ("accept", "*/*")]);
        strip_hop_by_hop(&mut h);
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["accept"]
        );
    }
}
