//! A fake Databricks token API for tests, over real HTTP on an ephemeral
//! port. It keeps every token it ever issued (values included, so tests
//! can look for them in logs), records every call, tracks the largest
//! number of Gatehouse-minted tokens live at once, and can stall a call
//! (to kill a server mid-rotation) or fail revocations on demand.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use gatehouse_domain::clock::Clock;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct FakeToken {
    pub id: String,
    pub value: String,
    pub user: String,
    pub comment: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

impl FakeToken {
    pub fn live(&self, now: i64) -> bool {
        self.deleted_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
    pub fn minted_by_gatehouse(&self) -> bool {
        self.comment.starts_with("gatehouse ")
    }
}

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    /// The id of the token that authenticated the call, if it was known.
    pub caller: Option<String>,
    pub body: Value,
    pub at: i64,
}

#[derive(Default)]
struct World {
    tokens: Vec<FakeToken>,
    calls: Vec<Call>,
    next_id: u64,
    max_live_minted: usize,
    fail_deletes: bool,
    fail_creates: bool,
    stall: Option<String>,
    stalled: bool,
}

#[derive(Clone)]
pub struct FakeUpstream {
    pub url: String,
    world: Arc<Mutex<World>>,
    clock: Arc<dyn Clock>,
    released: Arc<tokio::sync::Notify>,
}

fn unauthorized() -> (StatusCode, Json<Value>) {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error_code": "UNAUTHENTICATED", "message": "invalid token"})),
    )
}

impl FakeUpstream {
    pub async fn start(clock: Arc<dyn Clock>) -> Self {
        let fake = Self {
            url: String::new(),
            world: Arc::new(Mutex::new(World::default())),
            clock,
            released: Arc::new(tokio::sync::Notify::new()),
        };
        let app = Router::new()
            .route("/api/2.0/preview/scim/v2/Me", get(me))
            .route("/api/2.0/token/create", post(create))
            .route("/api/2.0/token/delete", post(delete))
            .route("/api/2.0/token/list", get(list))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}"),
            ..fake
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A personal access token of `user`, as a person would create it.
    pub fn seed_pat(&self, user: &str) -> FakeToken {
        let mut w = self.world.lock().unwrap();
        new_token(&mut w, user, "laptop", self.now(), None)
    }

    pub fn tokens(&self) -> Vec<FakeToken> {
        self.world.lock().unwrap().tokens.clone()
    }

    pub fn token(&self, id: &str) -> FakeToken {
        self.tokens().into_iter().find(|t| t.id == id).unwrap()
    }

    pub fn by_value(&self, value: &str) -> Option<FakeToken> {
        self.tokens().into_iter().find(|t| t.value == value)
    }

    pub fn calls(&self) -> Vec<Call> {
        self.world.lock().unwrap().calls.clone()
    }

    pub fn calls_to(&self, path_end: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.path.ends_with(path_end))
            .count()
    }

    pub fn live_minted(&self) -> Vec<FakeToken> {
        let now = self.now();
        self.tokens()
            .into_iter()
            .filter(|t| t.minted_by_gatehouse() && t.live(now))
            .collect()
    }

    /// The most Gatehouse-minted tokens ever live at one instant.
    pub fn max_live_minted(&self) -> usize {
        self.world.lock().unwrap().max_live_minted
    }

    pub fn fail_deletes(&self, fail: bool) {
        self.world.lock().unwrap().fail_deletes = fail;
    }

    pub fn fail_creates(&self, fail: bool) {
        self.world.lock().unwrap().fail_creates = fail;
    }

    /// The next call to a path ending in `path_end` hangs (after its
    /// effect, for create: the token exists but its answer never leaves)
    /// until [`FakeUpstream::release`].
    pub fn stall_next(&self, path_end: &str) {
        let mut w = self.world.lock().unwrap();
        w.stall = Some(path_end.into());
        w.stalled = false;
    }

    pub async fn wait_stalled(&self, bound: std::time::Duration) {
        let started = std::time::Instant::now();
        while !self.world.lock().unwrap().stalled {
            assert!(
                started.elapsed() < bound,
                "no call stalled within {bound:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn release(&self) {
        {
            let mut w = self.world.lock().unwrap();
            w.stall = None;
            w.stalled = false;
        }
        self.released.notify_waiters();
    }

    /// Records the call and names its caller; `None` when the bearer is
    /// not a live token (the caller gets 401).
    fn enter(
        &self,
        path: &str,
        method: &str,
        headers: &HeaderMap,
        body: &Value,
    ) -> (Option<FakeToken>, bool) {
        let now = self.now();
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string();
        let mut w = self.world.lock().unwrap();
        let caller = w
            .tokens
            .iter()
            .find(|t| t.value == bearer && t.live(now))
            .cloned();
        w.calls.push(Call {
            method: method.into(),
            path: path.into(),
            caller: caller.as_ref().map(|t| t.id.clone()),
            body: body.clone(),
            at: now,
        });
        let stall = w.stall.as_deref().is_some_and(|s| path.ends_with(s)) && !w.stalled;
        if stall {
            w.stalled = true;
        }
        (caller, stall)
    }

    async fn hang(&self) {
        // Until released (or the client goes away and the task is dropped).
        self.released.notified().await;
    }
}

fn new_token(
    w: &mut World,
    user: &str,
    comment: &str,
    now: i64,
    lifetime: Option<i64>,
) -> FakeToken {
    w.next_id += 1;
    let t = FakeToken {
        id: format!("tok{:04}", w.next_id),
        value: format!(
            "dapi{}",
            hex_of(&gatehouse_domain::codes::random_array::<16>())
        ),
        user: user.into(),
        comment: comment.into(),
        created_at: now,
        expires_at: lifetime.map(|l| now + l),
        deleted_at: None,
    };
    w.tokens.push(t.clone());
    let live = w
        .tokens
        .iter()
        .filter(|t| t.minted_by_gatehouse() && t.live(now))
        .count();
    w.max_live_minted = w.max_live_minted.max(live);
    t
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn me(State(f): State<FakeUpstream>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    let (caller, stall) = f.enter("/api/2.0/preview/scim/v2/Me", "GET", &headers, &Value::Null);
    if stall {
        f.hang().await;
    }
    match caller {
        // `x_token_id` is not Databricks': the generic driver test points at it.
        Some(t) => (
            StatusCode::OK,
            Json(json!({"userName": t.user, "active": true, "x_token_id": t.id})),
        ),
        None => unauthorized(),
    }
}

async fn create(
    State(f): State<FakeUpstream>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let (caller, stall) = f.enter("/api/2.0/token/create", "POST", &headers, &body);
    let Some(caller) = caller else {
        return unauthorized();
    };
    if f.world.lock().unwrap().fail_creates {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error_code": "TEMPORARILY_UNAVAILABLE"})),
        );
    }
    let lifetime = body["lifetime_seconds"].as_i64();
    let comment = body["comment"].as_str().unwrap_or_default().to_string();
    let now = f.now();
    let t = {
        let mut w = f.world.lock().unwrap();
        new_token(&mut w, &caller.user, &comment, now, lifetime)
    };
    if stall {
        f.hang().await;
    }
    (
        StatusCode::OK,
        Json(json!({
            "token_value": t.value,
            "token_info": {
                "token_id": t.id,
                "creation_time": t.created_at * 1000,
                "expiry_time": t.expires_at.map_or(-1, |e| e * 1000),
                "comment": t.comment,
            }
        })),
    )
}

async fn delete(
    State(f): State<FakeUpstream>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let (caller, stall) = f.enter("/api/2.0/token/delete", "POST", &headers, &body);
    if stall {
        f.hang().await;
    }
    let Some(caller) = caller else {
        return unauthorized();
    };
    let now = f.now();
    let mut w = f.world.lock().unwrap();
    if w.fail_deletes {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error_code": "TEMPORARILY_UNAVAILABLE"})),
        );
    }
    let id = body["token_id"].as_str().unwrap_or_default();
    match w
        .tokens
        .iter_mut()
        .find(|t| t.id == id && t.user == caller.user && t.deleted_at.is_none())
    {
        Some(t) => {
            t.deleted_at = Some(now);
            (StatusCode::OK, Json(json!({})))
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error_code": "RESOURCE_DOES_NOT_EXIST"})),
        ),
    }
}

async fn list(State(f): State<FakeUpstream>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    let (caller, stall) = f.enter("/api/2.0/token/list", "GET", &headers, &Value::Null);
    if stall {
        f.hang().await;
    }
    let Some(caller) = caller else {
        return unauthorized();
    };
    let now = f.now();
    let w = f.world.lock().unwrap();
    let infos: Vec<Value> = w
        .tokens
        .iter()
        .filter(|t| t.user == caller.user && t.live(now))
        .map(|t| {
            json!({
                "token_id": t.id,
                "creation_time": t.created_at * 1000,
                "expiry_time": t.expires_at.map_or(-1, |e| e * 1000),
                "comment": t.comment,
            })
        })
        .collect();
    (StatusCode::OK, Json(json!({ "token_infos": infos })))
}
