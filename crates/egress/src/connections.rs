//! The open connections jobs hold through the proxy, and what ends them.
//!
//! Every byte-exact `CONNECT` tunnel, every intercepted connection and
//! every upstream connection kept for plain requests takes a [`Slot`],
//! registered under the token it was opened with (its [`Lease`]) and its
//! job. A job holds at most `egress.max_connections_per_job` slots; the
//! next one is refused (`429`, `throttled`) until one closes.
//!
//! A connection ends when (SPEC §6):
//! - its token stops being valid: [`warden`] wakes on every revocation
//!   that reaches the node (the directory's [`TokenWatch::revocations`])
//!   and at least every [`TICK`], asks the directory about each distinct
//!   token held open, closes the connections of every revoked or expired
//!   one, and so within milliseconds of the revocation reaching the node;
//! - it carries no traffic in either direction for
//!   `egress.tunnel_idle_seconds` ([`Activity`], on real time);
//! - the client or the upstream closes it.
//!
//! Closing drops the connection's task, and with it both sockets: the
//! client sees the connection end, with no response in between.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use gatehouse_domain::clock::UnixTime;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{oneshot, watch};

use crate::directory::Lease;
use crate::refusal::Refusal;
use crate::Engine;

/// The longest the warden waits between two looks at expiries (the
/// clock is injected, so expiry is checked by looking, not by a timer).
pub const TICK: Duration = Duration::from_secs(1);

/// Why a connection was closed under its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Revoked,
    Expired,
}

/// The open connections of every job.
pub struct Connections {
    observer: Arc<dyn crate::EgressObserver>,
    max_per_job: usize,
    next_id: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// jti → its lease and the connections opened with it.
    by_token: HashMap<String, Holder>,
    /// job id → connections open.
    per_job: HashMap<String, usize>,
}

struct Holder {
    lease: Lease,
    open: HashMap<u64, oneshot::Sender<Ended>>,
}

impl State {
    fn release_job(&mut self, job: &str, n: usize) {
        if let Some(count) = self.per_job.get_mut(job) {
            *count = count.saturating_sub(n);
            if *count == 0 {
                self.per_job.remove(job);
            }
        }
    }
}

fn locked<R>(m: &Mutex<State>, f: impl FnOnce(&mut State) -> R) -> R {
    match m.lock() {
        Ok(mut g) => f(&mut g),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

impl Connections {
    pub fn new(max_per_job: usize, observer: Arc<dyn crate::EgressObserver>) -> Arc<Self> {
        Arc::new(Self {
            observer,
            max_per_job: max_per_job.max(1),
            next_id: AtomicU64::new(1),
            state: Mutex::new(State::default()),
        })
    }

    /// Registers a connection opened with `lease`, or refuses it when its
    /// job already holds the maximum.
    pub fn open(self: &Arc<Self>, lease: Lease) -> Result<Slot, Refusal> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let (jti, job) = (lease.jti.clone(), lease.job.job_id.clone());
        locked(&self.state, |st| {
            let count = st.per_job.entry(job.clone()).or_default();
            if *count >= self.max_per_job {
                self.observer.connection("refused", Duration::ZERO);
                return Err(Refusal::TooManyConnections {
                    limit: self.max_per_job,
                });
            }
            *count += 1;
            st.by_token
                .entry(jti.clone())
                .or_insert_with(|| Holder {
                    lease,
                    open: HashMap::new(),
                })
                .open
                .insert(id, tx);
            Ok(())
        })?;
        Ok(Slot {
            id,
            jti,
            job,
            registry: self.clone(),
            ended: rx,
            activity: Arc::new(Activity::new()),
            opened: Instant::now(),
        })
    }

    fn release(&self, jti: &str, job: &str, id: u64) {
        locked(&self.state, |st| {
            let Some(holder) = st.by_token.get_mut(jti) else {
                return;
            };
            if holder.open.remove(&id).is_none() {
                return;
            }
            if holder.open.is_empty() {
                st.by_token.remove(jti);
            }
            st.release_job(job, 1);
        });
    }

    /// Closes every connection whose lease `ended` says is over; returns
    /// how many were closed. Each distinct token is asked about once.
    pub fn sweep(&self, ended: impl Fn(&Lease) -> Option<Ended>) -> usize {
        locked(&self.state, |st| {
            let over: Vec<(String, Ended)> = st
                .by_token
                .iter()
                .filter_map(|(jti, h)| ended(&h.lease).map(|why| (jti.clone(), why)))
                .collect();
            let mut closed = 0;
            for (jti, why) in over {
                if let Some(holder) = st.by_token.remove(&jti) {
                    let n = holder.open.len();
                    for (_, tx) in holder.open {
                        let _ = tx.send(why);
                    }
                    st.release_job(&holder.lease.job.job_id, n);
                    closed += n;
                }
            }
            closed
        })
    }

    /// Connections open now, all jobs together.
    pub fn open_count(&self) -> usize {
        locked(&self.state, |st| st.per_job.values().sum())
    }

    /// Connections `job_id` holds now.
    pub fn held_by(&self, job_id: &str) -> usize {
        locked(&self.state, |st| {
            st.per_job.get(job_id).copied().unwrap_or(0)
        })
    }

    /// The earliest end among the tokens held open.
    fn next_end(&self) -> Option<UnixTime> {
        locked(&self.state, |st| {
            st.by_token.values().map(|h| h.lease.ends_at).min()
        })
    }
}

/// One registered connection. Dropping it releases its place.
pub struct Slot {
    id: u64,
    jti: String,
    job: String,
    registry: Arc<Connections>,
    ended: oneshot::Receiver<Ended>,
    activity: Arc<Activity>,
    opened: Instant,
}

impl Slot {
    pub fn job_id(&self) -> &str {
        &self.job
    }

    /// Whether the connection was closed under its holder (its token
    /// revoked or expired).
    pub fn is_ended(&mut self) -> bool {
        !matches!(
            self.ended.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        )
    }

    /// Wraps the client side of the connection so its traffic, in either
    /// direction, counts as activity.
    pub(crate) fn track<T>(&self, io: T) -> Tracked<T> {
        Tracked {
            inner: io,
            activity: self.activity.clone(),
        }
    }

    /// Runs the connection's `work` until it finishes, its token stops
    /// being valid, or it carries no traffic for `idle`. Whatever stops
    /// first, `work` is dropped with its sockets.
    pub(crate) async fn hold(mut self, idle: Duration, work: impl Future<Output = ()>) {
        let activity = self.activity.clone();
        tokio::select! {
            () = work => {}
            why = &mut self.ended => {
                tracing::debug!(job = %self.job, reason = ?why.ok(), "closing a connection: its token is no longer valid");
            }
            () = activity.idle_for(idle) => {
                tracing::debug!(job = %self.job, "closing an idle connection");
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry
            .observer
            .connection("closed", self.opened.elapsed());
        self.registry.release(&self.jti, &self.job, self.id);
    }
}

/// When a connection last carried a byte, on the monotonic clock.
pub(crate) struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Resolves once `idle` has passed without a touch.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet = last.elapsed();
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    }
}

/// An I/O stream whose reads and writes count as activity.
pub(crate) struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Engine {
    /// A slot for a new connection opened with the token behind `lease`
    /// (just verified or re-checked): the job's connection limit, and a
    /// last look at revocation once registered, so a revocation that
    /// lands while the slot is being taken is never missed (the warden
    /// sees the slot from then on).
    pub(crate) fn open_connection(&self, lease: &Lease) -> Result<Slot, Refusal> {
        if lease.ends_at <= self.clock.now() {
            return Err(Refusal::ProxyAuth);
        }
        let slot = self.connections.open(lease.clone())?;
        if self.directory.revoked(lease) {
            return Err(Refusal::ProxyAuth);
        }
        Ok(slot)
    }
}

/// Closes connections whose token stopped being valid, until `stop`.
pub async fn warden(engine: Arc<Engine>, mut stop: watch::Receiver<bool>) {
    let mut revocations = Some(engine.directory.revocations());
    loop {
        let now = engine.clock.now();
        let wait = engine
            .connections
            .next_end()
            .map(|end| Duration::from_secs(u64::try_from(end.saturating_sub(now)).unwrap_or(0)))
            .map_or(TICK, |until_end| until_end.min(TICK));
        tokio::select! {
            changed = async {
                match revocations.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                if !changed {
                    // The feed is gone (the server is stopping): the tick
                    // still catches expiries.
                    revocations = None;
                }
            }
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        let now = engine.clock.now();
        let directory = &engine.directory;
        let closed = engine.connections.sweep(|lease| {
            if lease.ends_at <= now {
                Some(Ended::Expired)
            } else if directory.revoked(lease) {
                Some(Ended::Revoked)
            } else {
                None
            }
        });
        if closed > 0 {
            tracing::info!(closed, "closed connections whose token stopped being valid");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::JobIdentity;

    fn lease(job: &str, jti: &str) -> Lease {
        Lease {
            job: JobIdentity {
                job_id: job.into(),
                subject: format!("bot/{job}"),
                agent: "bot".into(),
                owner: "o@x.org".into(),
                jti: jti.into(),
            },
            jti: jti.into(),
            issued_at: 0,
            ends_at: 1000,
        }
    }

    #[test]
    fn a_job_holds_at_most_its_limit_and_a_closed_slot_frees_its_place() {
        let c = Connections::new(2, Arc::new(crate::NoObserver));
        let a = c.open(lease("j1", "t1")).unwrap();
        let _b = c.open(lease("j1", "t2")).unwrap();
        assert!(matches!(
            c.open(lease("j1", "t1")),
            Err(Refusal::TooManyConnections { limit: 2 })
        ));
        let _other_job = c.open(lease("j2", "t3")).unwrap();
        drop(a);
        assert_eq!(c.held_by("j1"), 1);
        let _c = c.open(lease("j1", "t1")).unwrap();
        assert_eq!(c.open_count(), 3);
    }

    #[test]
    fn a_sweep_closes_every_connection_of_a_token_once() {
        let c = Connections::new(10, Arc::new(crate::NoObserver));
        let mut a = c.open(lease("j1", "t1")).unwrap();
        let mut b = c.open(lease("j1", "t1")).unwrap();
        let mut other = c.open(lease("j1", "t2")).unwrap();
        let closed = c.sweep(|l| (l.jti == "t1").then_some(Ended::Revoked));
        assert_eq!(closed, 2);
        assert!(a.is_ended() && b.is_ended() && !other.is_ended());
        assert_eq!(c.held_by("j1"), 1);
        // Dropping a swept slot does not release a second time.
        drop(a);
        drop(b);
        assert_eq!(c.held_by("j1"), 1);
        assert_eq!(c.sweep(|_| None), 0);
    }
}
