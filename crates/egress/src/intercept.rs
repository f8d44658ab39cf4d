//! TLS interception of a `CONNECT` to a host that one of the job's
//! placeholders is bound to: the client's TLS ends here with a leaf minted
//! by Gatehouse's CA, each request inside is checked again (the
//! `CONNECT`'s credential re-checked: time, revocation, live job; throttle,
//! `Host` equal to the `CONNECT` target, the job's allow list as its view
//! is now, judge), its placeholders swapped, and it goes to the upstream
//! over a TLS connection of our own to the address checked when the
//! tunnel opened.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use gatehouse_domain::egress::parse_target;
use http::{header, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Mutex;

use crate::admit::{Admitted, Context};
use crate::directory::{Lease, Rechecked};
use crate::forward::TlsUpstream;
use crate::refusal::Refusal;
use crate::{Body, BoxError, Engine};

struct Tunnel {
    engine: Arc<Engine>,
    peer: IpAddr,
    /// The `CONNECT`'s verified credential, re-checked on every request.
    lease: Arc<Lease>,
    /// What its re-checks remember (requests come one at a time).
    rechecked: std::sync::Mutex<Rechecked>,
    admitted: Admitted,
    /// The target's host, as refusals record it.
    host: Arc<str>,
    /// The first `Host` text found to name the target.
    host_seen: std::sync::OnceLock<String>,
    /// One upstream connection per client connection, opened on first use.
    upstream: Mutex<Option<TlsUpstream>>,
}

pub(crate) async fn serve(
    engine: Arc<Engine>,
    peer: IpAddr,
    lease: Arc<Lease>,
    admitted: Admitted,
    tls: Arc<ServerConfig>,
    client: impl AsyncRead + AsyncWrite + Unpin,
) {
    // The handshake is bounded like a request head: a client that opens
    // a tunnel and never speaks does not hold it.
    let header_timeout = engine.settings.header_timeout;
    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(client);
    let stream = match tokio::time::timeout(header_timeout, handshake).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(host = %admitted.host, "intercepted TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(host = %admitted.host, "intercepted TLS handshake timed out");
            return;
        }
    };
    let tunnel = Arc::new(Tunnel {
        engine,
        peer,
        lease,
        rechecked: std::sync::Mutex::default(),
        host: Arc::from(admitted.host.as_str()),
        admitted,
        host_seen: std::sync::OnceLock::new(),
        upstream: Mutex::new(None),
    });
    let service = service_fn(move |req| {
        let tunnel = tunnel.clone();
        async move { Ok::<_, Infallible>(tunnel.handle(req).await) }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .timer(crate::HeadTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!("intercepted connection: {e}");
    }
}

impl Tunnel {
    async fn recheck(&self) -> Result<(), Refusal> {
        let mut memo = self.rechecked.lock().map(|m| *m).unwrap_or_default();
        let checked = self.engine.recheck(&self.lease, &mut memo, self.peer).await;
        if let Ok(mut kept) = self.rechecked.lock() {
            *kept = memo;
        }
        checked
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let ctx = Context {
            lease: Some(self.lease.clone()),
            host: Some(self.host.clone()),
        };
        match self.forward(req).await {
            Ok(resp) => resp,
            Err(refusal) => self.engine.refuse(refusal, &ctx, self.peer),
        }
    }

    async fn forward(&self, req: Request<Incoming>) -> Result<Response<Body>, Refusal> {
        let engine = &self.engine;
        engine.throttle(self.peer)?;
        self.recheck().await?;
        let job = &self.lease.job;
        let host_header = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()))
            .ok_or_else(|| Refusal::Malformed("request has no Host".into()))?;
        // A client sends the same Host on every request: once it parsed to
        // the target, the same text needs no second parse.
        if self.host_seen.get() != Some(&host_header) {
            let said = parse_target(&host_header, self.admitted.target.port())?;
            if said != self.admitted.target {
                return Err(Refusal::Malformed(
                    "Host does not match the CONNECT target".into(),
                ));
            }
            let _ = self.host_seen.set(host_header.clone());
        }
        let view = engine.view(job).await?;
        // The allow list may have narrowed since the `CONNECT`.
        if !view.allows(&self.admitted.host) {
            return Err(Refusal::HostNotAllowed(self.admitted.host.clone()));
        }
        engine
            .judge(job, req.method().as_str(), &self.admitted.host, self.peer)
            .await?;
        let mut req = req.map(|b| b.map_err(BoxError::from).boxed_unsync());
        let mut slot = self.upstream.lock().await;
        let reusable = slot.as_ref().is_some_and(|s| !s.is_closed());
        if !reusable {
            *slot = Some(TlsUpstream::connect(engine, &self.admitted).await?);
        }
        let upstream = slot
            .as_mut()
            .ok_or_else(|| Refusal::Internal("no upstream connection".into()))?;
        // Swapped only for this verified TLS connection.
        let used = crate::forward::prepare_tls(
            engine,
            &mut req,
            &self.admitted.host,
            &host_header,
            &view,
            upstream.verified(),
        )?;
        let resp = upstream.send(req).await?;
        drop(slot);
        engine.swapped(job, &self.admitted.host, &used, self.peer);
        Ok(crate::forward::respond(resp, &view).await)
    }
}
