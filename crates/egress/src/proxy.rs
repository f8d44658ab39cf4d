//! The listener: one HTTP/1.1 server per client connection, dispatching
//! `CONNECT` (tunnel or interception) and absolute-form `http://`
//! requests. Anything else is `400`.
//!
//! Every request and every tunnel is authenticated on its own (a revoked
//! job token is refused from its next request on, inside an intercepted
//! tunnel too), and a source over its failure limit is refused first.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use gatehouse_domain::egress::parse_target;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{watch, Mutex};

use crate::admit::Context;
use crate::credential::Credential;
use crate::directory::{JobIdentity, JobView, Lease};
use crate::refusal::Refusal;
use crate::{Body, BoxError, Engine};

/// Each direction's buffer in a byte-exact tunnel: once admitted, a
/// tunnel is a plain copy, and large buffers make it one at copy speed
/// (fewer, larger reads and writes); idle timeout and revocation still
/// end it (`connections.rs`).
pub(crate) const TUNNEL_BUFFER: usize = 256 * 1024;

/// Serves the proxy on `listener` until `stop` turns true; the warden
/// that closes connections whose token stopped being valid runs as long.
pub async fn serve(listener: TcpListener, engine: Arc<Engine>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(crate::connections::warden(engine.clone(), stop.clone()));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("egress proxy accept: {e}");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let engine = engine.clone();
        let header_timeout = engine.settings.header_timeout;
        tokio::spawn(async move {
            let state = Arc::new(Mutex::new(ClientConnection::default()));
            let service = service_fn(move |req| {
                let engine = engine.clone();
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(engine, peer, req, state).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .timer(crate::HeadTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await
            {
                tracing::debug!("egress proxy connection: {e}");
            }
        });
    }
}

/// A client connection's upstream connection for plain requests, kept
/// while the client keeps its connection, with the admission it was
/// opened under.
struct Pooled {
    admission: Arc<Admission>,
    peer: SocketAddr,
    sender: SendRequest<Body>,
    /// Its place among the job's open connections.
    slot: crate::connections::Slot,
}

/// A plain request's target as [`Engine::admit`] found it, and what that
/// depended on: the authority text and the job's view (by identity: a
/// changed grant, allow list or policy is a new view). The address rules
/// are fixed for the engine's life and the addresses are the kept
/// connection's own, checked when it was dialled; so while the client
/// asks for the same authority under the same view, the admission stands
/// as it was. The judge is still asked per request.
struct Admission {
    authority: String,
    view: Arc<JobView>,
    admitted: crate::Admitted,
    /// The host, as refusals record it.
    host: Arc<str>,
}

impl Pooled {
    /// Whether this connection may carry `job`'s next request to
    /// `authority` under `view`, admitted as it was.
    fn serves(&mut self, job: &JobIdentity, authority: &str, view: &Arc<JobView>) -> bool {
        self.admission.authority == authority
            && Arc::ptr_eq(&self.admission.view, view)
            && self.usable_for(job)
    }

    fn usable_for(&mut self, job: &JobIdentity) -> bool {
        !self.sender.is_closed() && self.slot.job_id() == job.job_id && !self.slot.is_ended()
    }
}

/// What a client connection keeps between its requests (HTTP/1.1: one
/// request at a time, so the lock is never contended).
#[derive(Default)]
struct ClientConnection {
    /// The credential its requests presented (`credential.rs`).
    credential: Option<Credential>,
    upstream: Option<Pooled>,
}

async fn handle(
    engine: Arc<Engine>,
    peer: SocketAddr,
    req: Request<Incoming>,
    state: Arc<Mutex<ClientConnection>>,
) -> Response<Body> {
    let peer = peer.ip();
    let mut ctx = Context::default();
    let mut state = state.lock().await;
    let started = std::time::Instant::now();
    let kind = if req.method() == Method::CONNECT {
        "connect"
    } else {
        "forward"
    };
    let result = if req.method() == Method::CONNECT {
        // Boxed: a tunnel's setup is once per tunnel, and inline it would
        // make every plain request's future (moved whole into hyper's
        // slot) as large as its own.
        Box::pin(connect(&engine, peer, req, &mut ctx, &mut state)).await
    } else {
        plain(&engine, peer, req, &mut ctx, &mut state).await
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(refusal) => refusal.code(),
    };
    engine.observer.request(kind, outcome, started.elapsed());
    match result {
        Ok(resp) => resp,
        Err(refusal) => engine.refuse(refusal, &ctx, peer),
    }
}

pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp
}

async fn connect(
    engine: &Arc<Engine>,
    peer: IpAddr,
    mut req: Request<Incoming>,
    ctx: &mut Context,
    state: &mut ClientConnection,
) -> Result<Response<Body>, Refusal> {
    engine.throttle(peer)?;
    let lease = engine
        .authenticate(req.headers(), peer, &mut state.credential)
        .await?;
    ctx.lease = Some(lease.clone());
    let job = &lease.job;
    let authority = req
        .uri()
        .authority()
        .ok_or_else(|| Refusal::Malformed("CONNECT needs host:port".into()))?
        .as_str()
        .to_string();
    let target = parse_target(&authority, 0)?;
    ctx.host = Some(Arc::from(target.host().to_string()));
    let view = engine.view(job).await?;
    let admitted = engine.admit(job, &view, target, "CONNECT", peer).await?;
    let slot = engine.open_connection(&lease)?;
    let idle = engine.settings.tunnel_idle;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let intercept = match &engine.ca {
        Some(ca) if view.binds(&admitted.host, engine.clock.now()) => Some(
            ca.server_config(&admitted.host)
                .map_err(|e| Refusal::Internal(e.to_string()))?,
        ),
        _ => None,
    };
    match intercept {
        Some(tls) => {
            let engine = engine.clone();
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => {
                        let client = slot.track(TokioIo::new(upgraded));
                        let work =
                            crate::intercept::serve(engine, peer, lease, admitted, tls, client);
                        slot.hold(idle, work).await
                    }
                    Err(e) => tracing::debug!("CONNECT upgrade failed: {e}"),
                }
            });
        }
        None => {
            let mut upstream = crate::admit::dial(&admitted.addrs).await?;
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => {
                        let mut client = slot.track(TokioIo::new(upgraded));
                        let work = async move {
                            let _ = tokio::io::copy_bidirectional_with_sizes(
                                &mut client,
                                &mut upstream,
                                TUNNEL_BUFFER,
                                TUNNEL_BUFFER,
                            )
                            .await;
                        };
                        slot.hold(idle, work).await
                    }
                    Err(e) => tracing::debug!("CONNECT upgrade failed: {e}"),
                }
            });
        }
    }
    Ok(empty(StatusCode::OK))
}

async fn plain(
    engine: &Arc<Engine>,
    peer: IpAddr,
    req: Request<Incoming>,
    ctx: &mut Context,
    state: &mut ClientConnection,
) -> Result<Response<Body>, Refusal> {
    engine.throttle(peer)?;
    let lease = engine
        .authenticate(req.headers(), peer, &mut state.credential)
        .await?;
    ctx.lease = Some(lease.clone());
    let job = &lease.job;
    let uri = req.uri();
    if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
        return Err(Refusal::Malformed(
            "only absolute-form http:// requests and CONNECT are proxied".into(),
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| Refusal::Malformed("request URI has no host".into()))?
        .as_str();
    let view = engine.view(job).await?;
    let method = req.method().as_str();
    let kept = match state.upstream.as_mut() {
        Some(p) => p.serves(job, authority, &view).then(|| p.admission.clone()),
        None => None,
    };
    let (admission, fresh) = match kept {
        Some(admission) => {
            ctx.host = Some(admission.host.clone());
            engine
                .judge(job, method, &admission.admitted.host, peer)
                .await?;
            (admission, false)
        }
        None => {
            let target = parse_target(authority, 80)?;
            let host: Arc<str> = Arc::from(target.host().to_string());
            ctx.host = Some(host.clone());
            // Boxed, as `open_upstream` below: the first request's work,
            // kept out of the future every request moves.
            let admitted = Box::pin(engine.admit(job, &view, target, method, peer)).await?;
            let admission = Arc::new(Admission {
                authority: authority.to_string(),
                view: view.clone(),
                admitted,
                host,
            });
            (admission, true)
        }
    };
    let mut req = req.map(|b| b.map_err(BoxError::from).boxed_unsync());
    // Plain HTTP: no swap, no inject (a placeholder in it is refused).
    crate::forward::prepare_plain(
        engine,
        &mut req,
        &admission.admitted.host,
        &admission.authority,
        &view,
    )?;
    if fresh {
        // A new admission keeps the connection only if its peer is among
        // the addresses just checked.
        let addrs = &admission.admitted.addrs;
        let reusable = state
            .upstream
            .as_mut()
            .is_some_and(|p| addrs.contains(&p.peer) && p.usable_for(job));
        match state.upstream.as_mut() {
            Some(pooled) if reusable => pooled.admission = admission,
            _ => {
                // The old connection (if any) gives its place back first.
                state.upstream = None;
                state.upstream = Some(Box::pin(open_upstream(engine, &lease, admission)).await?);
            }
        }
    }
    let pooled = state
        .upstream
        .as_mut()
        .ok_or_else(|| Refusal::Internal("no upstream connection".into()))?;
    let resp = crate::forward::send(&mut pooled.sender, req).await?;
    Ok(crate::forward::respond(resp, &view).await)
}

/// A new upstream connection for `admission`, holding its place among
/// the job's open connections.
async fn open_upstream(
    engine: &Engine,
    lease: &Lease,
    admission: Arc<Admission>,
) -> Result<Pooled, Refusal> {
    let held = engine.open_connection(lease)?;
    let stream = crate::admit::dial(&admission.admitted.addrs).await?;
    let peer = stream
        .peer_addr()
        .map_err(|e| Refusal::BadGateway(e.to_string()))?;
    let sender = crate::forward::handshake(stream).await?;
    Ok(Pooled {
        admission,
        peer,
        sender,
        slot: held,
    })
}
