//! Serving the API listener (SPEC §6, slow clients): hyper's HTTP/1
//! server with a timer, so a request head must arrive within
//! `server.header_timeout_seconds` (`axum::serve` sets no such limit: a
//! client trickling one header byte at a time would hold its connection
//! forever), and at most `server.max_connections` open connections.
//!
//! Over the cap, a new connection is accepted and closed at once rather
//! than left in the kernel's backlog: the client learns immediately, the
//! backlog never fills with waiting sockets, and the connections being
//! served keep their share. The peer address reaches handlers as axum's
//! `ConnectInfo<SocketAddr>`, as before.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_service::Service;

use crate::config::ServerConfig;

/// How long a shutdown waits for open requests to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves, then lets
/// open connections finish their current request (bounded).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.header_read_timeout(settings.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: back off, never spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "server.max_connections reached: connection closed");
            drop(stream);
            continue;
        };
        let app = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let mut app = app.clone();
            // A Router is always ready: `call` needs no `poll_ready` first.
            app.call(req)
        });
        // Each connection's head deadlines on a timer of its own (see
        // `HeadTimer`), the proxy's slow-client rule as well.
        let conn = builder
            .clone()
            .timer(gatehouse_egress::HeadTimer::new())
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: connections still open after {DRAIN_TIMEOUT:?}, closing them");
    }
    Ok(())
}
