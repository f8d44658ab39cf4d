//! What the load generator measured, and the report built from it: per
//! phase and per operation, answers counted, the rate held, p50/p99
//! latency; every figure of the cluster's phases also as a ratio to the
//! single-node phase of the same run.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// One kind of request an agent makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `GET /v1/auth/whoami` with a job token.
    Whoami,
    /// `GET /v1/job/credentials`.
    Credentials,
    /// HTTPS through the proxy, `CONNECT` tunnelled untouched.
    Tunnel,
    /// HTTPS through the proxy, intercepted, placeholder swapped.
    Intercept,
    /// `PUT /v1/secrets/{name}` by a human session (runs directly).
    SecretWrite,
    /// `PUT /v1/secrets/{name}` by an api token (held: `202`).
    ApprovalRequest,
    /// `POST /v1/approvals/{id}/decision` on another replica.
    ApprovalDecide,
    /// `whoami` with a token revoked earlier (must be refused).
    RevokedProbe,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Whoami => "whoami",
            Op::Credentials => "credentials",
            Op::Tunnel => "tunnel",
            Op::Intercept => "intercept",
            Op::SecretWrite => "secret_write",
            Op::ApprovalRequest => "approval_request",
            Op::ApprovalDecide => "approval_decide",
            Op::RevokedProbe => "revoked_probe",
        }
    }
}

/// One request as the harness saw it.
#[derive(Debug, Clone)]
pub struct Sample {
    pub phase: usize,
    pub op: Op,
    /// Seconds since the run started, when the request was sent and when
    /// its answer (or error) came back.
    pub start: f64,
    pub end: f64,
    /// HTTP status; 0 when no answer came (connection refused, reset,
    /// timeout).
    pub status: u16,
    /// The answer the operation expects in good health.
    pub ok: bool,
}

impl Sample {
    pub fn latency_ms(&self) -> f64 {
        (self.end - self.start) * 1000.0
    }
}

/// Samples from every agent, and the phase they fall in.
pub struct Recorder {
    started: Instant,
    samples: Mutex<Vec<Sample>>,
    phase: std::sync::atomic::AtomicUsize,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            samples: Mutex::new(Vec::new()),
            phase: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Seconds since the run started.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn set_phase(&self, phase: usize) {
        self.phase.store(phase, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn phase(&self) -> usize {
        self.phase.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn record(&self, op: Op, start: f64, status: u16, ok: bool) {
        let sample = Sample {
            phase: self.phase(),
            op,
            start,
            end: self.now(),
            status,
            ok,
        };
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sample);
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The nearest-rank percentile (`p` in 0..=100) of `values`; `None` when
/// there are none.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).copied()
}

/// One operation within one phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpStats {
    pub count: usize,
    pub ok: usize,
    /// Answers by status (`"0"`: closed or refused without an answer,
    /// `"1"`: no answer within the client's 10 s, `"2"`: the proxy
    /// refused the `CONNECT`).
    pub statuses: BTreeMap<String, usize>,
    /// Successful answers per second over the phase.
    pub ok_per_second: f64,
    /// Latency of the successful answers, milliseconds.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Summarises the samples of one phase that lasted `seconds`.
pub fn summarise(samples: &[Sample], phase: usize, seconds: f64) -> BTreeMap<Op, OpStats> {
    let mut by_op: BTreeMap<Op, Vec<&Sample>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.phase == phase) {
        by_op.entry(s.op).or_default().push(s);
    }
    by_op
        .into_iter()
        .map(|(op, list)| {
            let ok: Vec<f64> = list
                .iter()
                .filter(|s| s.ok)
                .map(|s| s.latency_ms())
                .collect();
            let mut statuses = BTreeMap::new();
            for s in &list {
                *statuses.entry(s.status.to_string()).or_insert(0) += 1;
            }
            let stats = OpStats {
                count: list.len(),
                ok: ok.len(),
                statuses,
                ok_per_second: if seconds > 0.0 {
                    ok.len() as f64 / seconds
                } else {
                    0.0
                },
                p50_ms: percentile(&ok, 50.0),
                p99_ms: percentile(&ok, 99.0),
            };
            (op, stats)
        })
        .collect()
}

/// A phase's figures as ratios to the same figures of the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratios {
    /// Total successful answers per second, phase / baseline.
    pub ok_per_second: Option<f64>,
    /// Per operation: (rate, p50, p99), phase / baseline.
    pub ops: BTreeMap<String, OpRatios>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpRatios {
    pub ok_per_second: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some((a / b * 1000.0).round() / 1000.0),
        _ => None,
    }
}

pub fn total_rate(ops: &BTreeMap<Op, OpStats>) -> f64 {
    ops.values().map(|s| s.ok_per_second).sum()
}

pub fn ratios(phase: &BTreeMap<Op, OpStats>, baseline: &BTreeMap<Op, OpStats>) -> Ratios {
    let ops = phase
        .iter()
        .map(|(op, s)| {
            let b = baseline.get(op);
            (
                op.name().to_string(),
                OpRatios {
                    ok_per_second: ratio(Some(s.ok_per_second), b.map(|b| b.ok_per_second)),
                    p50: ratio(s.p50_ms, b.and_then(|b| b.p50_ms)),
                    p99: ratio(s.p99_ms, b.and_then(|b| b.p99_ms)),
                },
            )
        })
        .collect();
    Ratios {
        ok_per_second: ratio(Some(total_rate(phase)), Some(total_rate(baseline))),
        ops,
    }
}

/// One phase in the report: its length, the rate it held, each
/// operation's figures, the same as ratios to the baseline, and what the
/// fault (if any) recorded.
pub fn phase_report(
    name: &str,
    samples: &[Sample],
    index: usize,
    seconds: f64,
    baseline: &BTreeMap<Op, OpStats>,
    fault: &serde_json::Value,
) -> serde_json::Value {
    let ops = summarise(samples, index, seconds);
    let ops_json: BTreeMap<&str, &OpStats> = ops.iter().map(|(op, s)| (op.name(), s)).collect();
    serde_json::json!({
        "name": name,
        "seconds": (seconds * 100.0).round() / 100.0,
        "ok_per_second": (total_rate(&ops) * 10.0).round() / 10.0,
        "ops": ops_json,
        "ratios_to_single_node": ratios(&ops, baseline),
        "fault": fault,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(phase: usize, op: Op, ms: f64, status: u16, ok: bool) -> Sample {
        Sample {
            phase,
            op,
            start: 1.0,
            end: 1.0 + ms / 1000.0,
            status,
            ok,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), Some(2.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_summary_counts_every_answer_and_times_only_the_successful_ones() {
        let samples = vec![
            sample(1, Op::Whoami, 10.0, 200, true),
            sample(1, Op::Whoami, 30.0, 200, true),
            sample(1, Op::Whoami, 5000.0, 503, false),
            sample(2, Op::Whoami, 1.0, 200, true),
            sample(1, Op::Tunnel, 20.0, 0, false),
        ];
        let s = summarise(&samples, 1, 2.0);
        let who = &s[&Op::Whoami];
        assert_eq!((who.count, who.ok), (3, 2));
        assert_eq!(who.statuses["200"], 2);
        assert_eq!(who.statuses["503"], 1);
        assert_eq!(who.ok_per_second, 1.0);
        assert!((who.p50_ms.unwrap_or_default() - 10.0).abs() < 1e-6);
        assert!((who.p99_ms.unwrap_or_default() - 30.0).abs() < 1e-6);
        let tunnel = &s[&Op::Tunnel];
        assert_eq!((tunnel.ok, tunnel.p50_ms), (0, None));
        assert_eq!(tunnel.statuses["0"], 1);
    }

    #[test]
    fn ratios_compare_a_phase_with_the_baseline_and_leave_gaps_empty() {
        let base = summarise(
            &[
                sample(0, Op::Whoami, 10.0, 200, true),
                sample(0, Op::Whoami, 10.0, 200, true),
            ],
            0,
            1.0,
        );
        let phase = summarise(
            &[
                sample(1, Op::Whoami, 20.0, 200, true),
                sample(1, Op::Whoami, 20.0, 200, true),
                sample(1, Op::Whoami, 20.0, 200, true),
                sample(1, Op::Tunnel, 5.0, 200, true),
            ],
            1,
            1.0,
        );
        let r = ratios(&phase, &base);
        assert_eq!(r.ok_per_second, Some(2.0));
        assert_eq!(r.ops["whoami"].ok_per_second, Some(1.5));
        assert_eq!(r.ops["whoami"].p50, Some(2.0));
        assert_eq!(r.ops["tunnel"].p99, None, "no baseline for the tunnel");
    }

    #[test]
    fn a_phase_report_names_its_operations_and_compares_them_with_the_baseline() {
        let samples = vec![
            sample(0, Op::Whoami, 10.0, 200, true),
            sample(1, Op::Whoami, 20.0, 200, true),
            sample(1, Op::Intercept, 50.0, 2, false),
        ];
        let base = summarise(&samples, 0, 1.0);
        let fault = serde_json::json!({"recovery_seconds": 0.5});
        let r = phase_report("store_stopped", &samples, 1, 2.0, &base, &fault);
        assert_eq!(r["name"], "store_stopped");
        assert_eq!(r["seconds"], 2.0);
        assert_eq!(r["ok_per_second"], 0.5);
        assert_eq!(
            r["ops"]["whoami"]["p50_ms"].as_f64().map(f64::round),
            Some(20.0)
        );
        assert_eq!(r["ops"]["intercept"]["statuses"]["2"], 1);
        assert_eq!(r["ops"]["intercept"]["ok"], 0);
        assert_eq!(r["ratios_to_single_node"]["ops"]["whoami"]["p50"], 2.0);
        assert_eq!(r["ratios_to_single_node"]["ok_per_second"], 0.5);
        assert_eq!(r["fault"]["recovery_seconds"], 0.5);
    }
}
