//! Which credential each MCP session belongs to, and the end of a session
//! whose credential stops being valid.
//!
//! A session (the `Mcp-Session-Id` rmcp hands out on `initialize`) is
//! bound to the credential that opened it: the same token (`jti`), owner,
//! class and subject. A request naming a session with any other
//! credential is answered as if the session did not exist, so one token
//! cannot ride another's session. Every request is authenticated afresh
//! by the `Principal` extractor (the one verifier) before it reaches the
//! session; besides, a watcher re-checks every session's credential
//! through the same verifier whenever the revocation view changes and
//! every second, and closes the sessions whose credential no longer
//! holds (revoked, expired, owner gone, view unconfirmed): their open
//! `GET` streams end and their id is forgotten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gatehouse_api::auth::Presentation;
use gatehouse_api::state::{AppState, Inner};
use gatehouse_domain::{CredentialClass, Email, Principal};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::SessionManager;

/// How often the watcher re-checks sessions when nothing is announced.
const RECHECK: Duration = Duration::from_secs(1);
/// After a revocation is announced, the sweep waits this long, so an
/// answer already on its way (`revoke_self`'s own) reaches the client
/// before its session closes. Every new message is refused at once by the
/// verifier regardless.
const GRACE: Duration = Duration::from_millis(250);

/// Who opened a session.
struct Binding {
    owner: Email,
    class: CredentialClass,
    subject: String,
    jti: Option<String>,
    presented: Presentation,
}

impl Binding {
    fn holds_for(&self, p: &Principal) -> bool {
        self.owner == p.owner
            && self.class == p.class
            && self.subject == p.subject
            && self.jti == p.jti
    }
}

/// The sessions of one server, with their credentials.
pub struct Sessions {
    bound: Mutex<HashMap<String, Binding>>,
    manager: Arc<LocalSessionManager>,
    watcher: std::sync::OnceLock<()>,
}

/// Whether a request may use the session it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Bound to this very credential.
    Granted,
    /// Unknown, or another credential's: the same answer for both.
    Unknown,
}

impl Sessions {
    pub fn new(manager: Arc<LocalSessionManager>) -> Self {
        Self {
            bound: Mutex::new(HashMap::new()),
            manager,
            watcher: std::sync::OnceLock::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Binding>> {
        self.bound
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records that `principal` opened session `id`.
    pub fn bind(&self, id: &str, principal: &Principal, presented: Presentation) {
        self.lock().insert(
            id.to_string(),
            Binding {
                owner: principal.owner.clone(),
                class: principal.class,
                subject: principal.subject.clone(),
                jti: principal.jti.clone(),
                presented,
            },
        );
    }

    pub fn check(&self, id: &str, principal: &Principal) -> Use {
        match self.lock().get(id) {
            Some(b) if b.holds_for(principal) => Use::Granted,
            _ => Use::Unknown,
        }
    }

    /// The session was closed by its client (`DELETE`).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Starts the watcher once per server. It holds the state weakly and
    /// stops when the server is gone.
    pub fn watch(self: &Arc<Self>, st: &AppState) {
        self.watcher.get_or_init(|| {
            let sessions = Arc::downgrade(self);
            let state = Arc::downgrade(&st.0);
            let changes = st.auth.revocations.subscribe();
            tokio::spawn(watcher(sessions, state, changes));
        });
    }

    /// Re-checks every session's credential; closes those that fail, and
    /// forgets those rmcp ended by itself (idle, closed).
    pub async fn sweep(&self, st: &AppState) -> usize {
        let held: Vec<(String, Presentation)> = self
            .lock()
            .iter()
            .map(|(id, b)| (id.clone(), b.presented.clone()))
            .collect();
        let mut ended = 0;
        for (id, presented) in held {
            let sid: rmcp::transport::streamable_http_server::session::SessionId =
                Arc::from(id.as_str());
            if !self.manager.has_session(&sid).await.unwrap_or(true) {
                self.forget(&id);
                continue;
            }
            if st.auth.reauthenticate(&presented).await.is_err() {
                self.end(&id).await;
                ended += 1;
            }
        }
        ended
    }

    /// Ends session `id` now: forgotten here, closed in rmcp (its streams
    /// end with it).
    pub async fn end(&self, id: &str) {
        self.forget(id);
        let sid: rmcp::transport::streamable_http_server::session::SessionId = Arc::from(id);
        if let Err(e) = self.manager.close_session(&sid).await {
            tracing::debug!("closing an MCP session: {e}");
        }
    }

    /// A request naming session `id` was refused by the verifier: if the
    /// session's own credential no longer holds, the session ends now.
    pub async fn recheck(&self, st: &AppState, id: &str) {
        let presented = self.lock().get(id).map(|b| b.presented.clone());
        if let Some(presented) = presented {
            if st.auth.reauthenticate(&presented).await.is_err() {
                self.end(id).await;
            }
        }
    }
}

async fn watcher(
    sessions: Weak<Sessions>,
    state: Weak<Inner>,
    mut changes: tokio::sync::watch::Receiver<u64>,
) {
    let mut tick = tokio::time::interval(RECHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                tokio::time::sleep(GRACE).await;
            }
            _ = tick.tick() => {}
        }
        let (Some(sessions), Some(inner)) = (sessions.upgrade(), state.upgrade()) else {
            return;
        };
        if sessions.is_empty() {
            continue;
        }
        let st = AppState(inner);
        let ended = sessions.sweep(&st).await;
        if ended > 0 {
            tracing::info!(
                ended,
                "MCP sessions ended: their credential no longer holds"
            );
        }
    }
}
