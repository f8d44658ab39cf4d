//! `GET /v1/approvals/events`: server-sent events for the live inbox.
//! The route's rule is that of `GET /v1/approvals` (and so is the one
//! token verifier before it); each event names an approval created or
//! changed on any replica (`approval_feed`), sent only to a caller who
//! may see it (`app::approvals::visible`). The stream re-checks the
//! credential on every event and every second, and ends once it is
//! revoked or expired: signing out closes the feed.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio::time::{interval, Interval, MissedTickBehavior};

use gatehouse_domain::Principal;

use crate::app::approvals::visible;
use crate::state::AppState;

/// How often a quiet stream re-checks its credential (the one verifier,
/// served from its cache): a revoked session's feed ends within this.
const RECHECK: Duration = Duration::from_secs(1);

struct Listener {
    st: AppState,
    principal: Principal,
    headers: HeaderMap,
    peer: SocketAddr,
    feed: Receiver<String>,
    recheck: Interval,
}

impl Listener {
    /// The credential still holds (not revoked, not expired).
    async fn still_valid(&self) -> bool {
        self.st
            .auth
            .authenticate(&Method::GET, &self.headers, Some(self.peer.ip()))
            .await
            .is_ok()
    }

    /// The next event for this caller, or `None` to end the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                message = self.feed.recv() => {
                    if !self.still_valid().await {
                        return None;
                    }
                    match message {
                        Ok(id) => {
                            let Ok(Some(a)) = self.st.store.approval(&id).await else { continue };
                            if visible(&self.principal, &a) {
                                let data = json!({
                                    "approval_id": a.id,
                                    "status": a.status.as_str(),
                                    "verb": a.verb,
                                });
                                return Some(Event::default().event("approval").data(data.to_string()));
                            }
                        }
                        // Too far behind to know which: tell it to look again.
                        Err(RecvError::Lagged(_)) => {
                            return Some(Event::default().event("approval").data("{}"));
                        }
                        Err(RecvError::Closed) => return None,
                    }
                }
                _ = self.recheck.tick() => {
                    if !self.still_valid().await {
                        return None;
                    }
                }
            }
        }
    }
}

/// Any credential but a job's (as `GET /v1/approvals`).
pub async fn stream(
    principal: Principal,
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let mut recheck = interval(RECHECK);
    recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let listener = Listener {
        feed: st.approval_feed.subscribe(),
        st,
        principal,
        headers,
        peer,
        recheck,
    };
    let events = stream::unfold(listener, |mut l| async move {
        l.next().await.map(|event| (Ok(event), l))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
