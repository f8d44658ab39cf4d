//! Prometheus metrics at `GET /metrics` (SPEC §15), kept with
//! `prometheus-client`.
//!
//! Every label is a closed set the server chooses: a route template
//! (never the raw path), a method, a status class, a store call's name,
//! an egress kind and outcome. No owner, subject, token, host or value is
//! ever a label (`api/tests/metrics_api.rs` scrapes after traffic full of
//! them and asserts none appears).

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    /// The route template (`/v1/secrets/{name}`), or `unmatched`.
    route: String,
    /// `2xx`, `4xx`, ...
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    /// The `Store` trait method.
    call: &'static str,
    /// `ok` or `error`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EgressLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// 0.5 ms .. ~16 s: API requests, store calls, proxy requests.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// 10 ms .. ~3 h: how long tunnels stay open.
fn lifetime() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 4.0, 11))
}

pub struct Metrics {
    registry: Registry,
    http: Histograms<HttpLabels>,
    store: Histograms<StoreLabels>,
    egress_requests: Histograms<EgressLabels>,
    /// The `forward`/`ok` series of `egress_requests`, held so that a
    /// proxied request, the common case, finds it without a lookup.
    egress_forward_ok: Histogram,
    egress_connections: Histograms<OutcomeLabels>,
    approvals_pending: Gauge,
    revocation_fresh: Gauge,
    revocation_age: Gauge<f64, AtomicU64>,
    revocation_lag: Histogram,
    revoked_tokens: Gauge,
    token_cache: Gauge,
    owner_cache: Gauge,
    egress_open: Gauge,
    /// Approval sweeper passes completed (read at scrape time).
    sweeps: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gatehouse");
        let http: Histograms<HttpLabels> = Family::new_with_constructor(latency);
        let store: Histograms<StoreLabels> = Family::new_with_constructor(latency);
        let egress_requests: Histograms<EgressLabels> = Family::new_with_constructor(latency);
        let egress_connections: Histograms<OutcomeLabels> = Family::new_with_constructor(lifetime);
        let revocation_lag = Histogram::new([0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]);
        registry.register(
            "http_request_duration_seconds",
            "API request duration by route template, method and status class",
            http.clone(),
        );
        registry.register(
            "store_call_duration_seconds",
            "Store call duration by call and outcome",
            store.clone(),
        );
        registry.register(
            "egress_request_duration_seconds",
            "Egress proxy request (or CONNECT admission) duration by kind and outcome",
            egress_requests.clone(),
        );
        registry.register(
            "egress_connection_duration_seconds",
            "How long egress tunnels and intercepted connections stayed open, by outcome",
            egress_connections.clone(),
        );
        registry.register(
            "revocation_propagation_lag_seconds",
            "Seconds from a revocation's timestamp to this node's view applying it (whole seconds)",
            revocation_lag.clone(),
        );
        let egress_forward_ok = egress_requests
            .get_or_create(&EgressLabels {
                kind: "forward",
                outcome: "ok",
            })
            .clone();
        let metrics = Self {
            registry,
            http,
            store,
            egress_requests,
            egress_forward_ok,
            egress_connections,
            approvals_pending: Gauge::default(),
            revocation_fresh: Gauge::default(),
            revocation_age: Gauge::default(),
            revocation_lag,
            revoked_tokens: Gauge::default(),
            token_cache: Gauge::default(),
            owner_cache: Gauge::default(),
            egress_open: Gauge::default(),
            sweeps: AtomicU64::new(0),
        };
        metrics.register_gauges()
    }

    fn register_gauges(mut self) -> Self {
        let gauges: [(&str, &str, Gauge); 6] = [
            (
                "approvals_pending",
                "Approvals waiting for a human decision (all owners)",
                self.approvals_pending.clone(),
            ),
            (
                "revocation_view_fresh",
                "1 while the revocation view is confirmed against the store, 0 when stale (tokens refused)",
                self.revocation_fresh.clone(),
            ),
            (
                "revoked_tokens",
                "Single-token revocations held in this node's view",
                self.revoked_tokens.clone(),
            ),
            (
                "verified_token_cache_entries",
                "Entries in the verified-token cache",
                self.token_cache.clone(),
            ),
            (
                "job_owner_cache_entries",
                "Entries in the job to owner cache",
                self.owner_cache.clone(),
            ),
            (
                "egress_open_connections",
                "Egress tunnels and intercepted connections open now",
                self.egress_open.clone(),
            ),
        ];
        for (name, help, gauge) in gauges {
            self.registry.register(name, help, gauge);
        }
        self.registry.register(
            "revocation_view_age_seconds",
            "Seconds since this node last confirmed its revocation view",
            self.revocation_age.clone(),
        );
        self
    }

    /// One completed approval sweeper pass.
    pub fn count_sweep(&self) {
        self.sweeps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// One store call (the timing decorator, `store_timing.rs`).
    pub fn store_call(&self, call: &'static str, ok: bool, elapsed: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.store
            .get_or_create(&StoreLabels { call, outcome })
            .observe(elapsed.as_secs_f64());
    }

    /// A revocation this node applied `lag_seconds` after it was made.
    pub fn revocation_applied(&self, lag_seconds: i64) {
        self.revocation_lag.observe(lag_seconds.max(0) as f64);
    }

    fn observe_http(&self, method: &Method, route: String, status: StatusCode, elapsed: Duration) {
        let labels = HttpLabels {
            method: method_label(method),
            route,
            status: status_class(status),
        };
        self.http
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }
}

impl gatehouse_egress::EgressObserver for Metrics {
    fn request(&self, kind: &'static str, outcome: &'static str, elapsed: Duration) {
        if (kind, outcome) == ("forward", "ok") {
            return self.egress_forward_ok.observe(elapsed.as_secs_f64());
        }
        self.egress_requests
            .get_or_create(&EgressLabels { kind, outcome })
            .observe(elapsed.as_secs_f64());
    }

    fn connection(&self, outcome: &'static str, open_for: Duration) {
        self.egress_connections
            .get_or_create(&OutcomeLabels { outcome })
            .observe(open_for.as_secs_f64());
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The route template a request matched, carried out on its response.
#[derive(Clone)]
struct RouteTemplate(String);

/// The route template a response answered for, once [`tag_route`] saw it.
pub fn route_of(response: &Response) -> Option<&str> {
    response
        .extensions()
        .get::<RouteTemplate>()
        .map(|t| t.0.as_str())
}

/// Route layer: notes the matched template (only known inside routing).
pub async fn tag_route(req: Request, next: Next) -> Response {
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(t) = template {
        response.extensions_mut().insert(RouteTemplate(t));
    }
    response
}

/// Outer layer: times every request, by template, method and status class.
pub async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let response = next.run(req).await;
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or_else(|| "unmatched".to_owned(), |t| t.0.clone());
    st.metrics
        .observe_http(&method, route, response.status(), started.elapsed());
    response
}

/// Public, like `/healthz`: figures about the process, read now.
pub async fn render(State(st): State<AppState>) -> Response {
    let m = &st.metrics;
    m.approvals_pending.set(pending_approvals(&st).await);
    m.revocation_fresh
        .set(i64::from(st.auth.revocations.is_fresh()));
    m.revocation_age
        .set(st.auth.revocations.since_confirmed().as_secs_f64());
    m.revoked_tokens
        .set(st.auth.revocations.revoked_jtis() as i64);
    m.token_cache.set(st.auth.cache.len() as i64);
    m.owner_cache.set(st.owner_cache.len() as i64);
    if let Some(engine) = st.egress.get() {
        m.egress_open.set(engine.connections.open_count() as i64);
    }
    // Counters kept elsewhere (the authenticator's), read at scrape time.
    let mut now = Registry::with_prefix("gatehouse");
    now.register(
        "token_refusals",
        "Presented tokens refused by the verifier",
        ConstCounter::new(st.auth.refusals.load(std::sync::atomic::Ordering::Relaxed)),
    );
    now.register(
        "token_refusals_unaudited",
        "Refused tokens not written to the audit log (per-source or global audit limit reached)",
        ConstCounter::new(st.auth.refusal_audit.unaudited()),
    );
    now.register(
        "access_denials_unaudited",
        "Route-rule refusals of valid tokens not written to the audit log (audit limit reached)",
        ConstCounter::new(st.access_audit.unaudited()),
    );
    now.register(
        "approval_sweeps",
        "Approval sweeper passes completed (expiry, interrupted and left-over approved requests)",
        ConstCounter::new(m.sweeps.load(std::sync::atomic::Ordering::Relaxed)),
    );
    let mut out = String::new();
    let encoded = prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry)
        .and_then(|()| prometheus_client::encoding::prometheus_text::encode(&mut out, &now));
    if let Err(e) = encoded {
        return crate::error::ApiError::internal(format!("encoding metrics: {e}")).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// Pending approvals across owners; a store error leaves the gauge at -1
/// (visible, and never a reason to fail the scrape).
async fn pending_approvals(st: &AppState) -> i64 {
    let filter = gatehouse_store::ApprovalFilter {
        owner: None,
        status: Some(gatehouse_domain::approvals::ApprovalStatus::Pending),
        requester: None,
        limit: MAX_COUNTED_APPROVALS,
    };
    match st.store.approvals(&filter).await {
        Ok(list) => list.len() as i64,
        Err(e) => {
            tracing::warn!("metrics: counting pending approvals failed: {e}");
            -1
        }
    }
}

/// Pending approvals are few (each has a 1 h time to live); the gauge
/// stops counting here.
const MAX_COUNTED_APPROVALS: i64 = 10_000;
