//! Prometheus metrics at `GET /metrics`: counters and gauges about the
//! gateway itself, never labelled with owners, subjects or secrets.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

#[derive(Default)]
pub struct Metrics {
    /// Responses by status class: 1xx..5xx.
    responses: [AtomicU64; 5],
    /// Approval sweeper passes completed.
    sweeps: AtomicU64,
}

impl Metrics {
    pub fn count_sweep(&self) {
        self.sweeps.fetch_add(1, Ordering::Relaxed);
    }

    fn count_response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts every response by status class.
pub async fn count(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    st.metrics.count_response(response.status().as_u16());
    response
}

/// Public, like `/healthz`: figures about the process only.
pub async fn render(State(st): State<AppState>) -> Response {
    let mut out = String::new();
    out.push_str("# HELP gatehouse_http_responses_total HTTP responses by status class.\n");
    out.push_str("# TYPE gatehouse_http_responses_total counter\n");
    for (i, counter) in st.metrics.responses.iter().enumerate() {
        out.push_str(&format!(
            "gatehouse_http_responses_total{{class=\"{}xx\"}} {}\n",
            i + 1,
            counter.load(Ordering::Relaxed)
        ));
    }
    let gauges: [(&str, &str, &str, u64); 7] = [
        (
            "gatehouse_approval_sweeps_total",
            "counter",
            "Approval sweeper passes completed (expiry, interrupted and left-over approved requests).",
            st.metrics.sweeps.load(Ordering::Relaxed),
        ),
        (
            "gatehouse_token_refusals_total",
            "counter",
            "Presented tokens refused by the verifier.",
            st.auth.refusals.load(Ordering::Relaxed),
        ),
        (
            "gatehouse_token_refusals_unaudited_total",
            "counter",
            "Refused tokens not written to the audit log (per-source or global audit limit reached).",
            st.auth.refusal_audit.unaudited(),
        ),
        (
            "gatehouse_revoked_tokens",
            "gauge",
            "Single-token revocations held in this node's view.",
            st.auth.revocations.revoked_jtis() as u64,
        ),
        (
            "gatehouse_revocation_view_fresh",
            "gauge",
            "1 while the revocation view is confirmed against the store, 0 when stale (tokens refused).",
            u64::from(st.auth.revocations.is_fresh()),
        ),
        (
            "gatehouse_verified_token_cache_entries",
            "gauge",
            "Entries in the verified-token cache.",
            st.auth.cache.len() as u64,
        ),
        (
            "gatehouse_job_owner_cache_entries",
            "gauge",
            "Entries in the job to owner cache.",
            st.owner_cache.len() as u64,
        ),
    ];
    for (name, kind, help, value) in gauges {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
