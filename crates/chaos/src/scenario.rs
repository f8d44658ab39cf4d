//! One run: the world started, the single-node baseline, the cluster in
//! steady state, each fault in turn under load, then the invariants
//! checked against the store and the report written.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::checks::{self, Violations};
use crate::cluster::{target_of, Balancer, Launcher, Replica, Target};
use crate::load::{self, World};
use crate::pg::{self, PrivatePg};
use crate::stats::{self, Recorder};
use crate::upstream::{self, SWAP_HOST, TUNNEL_HOST};

pub struct Options {
    pub form: &'static str,
    pub agents: usize,
    /// Length of each steady phase (and of the phases around a fault).
    pub phase: Duration,
    pub outage: Duration,
    pub exhaustion: Duration,
    pub skew_seconds: i64,
    /// `revocation.max_staleness_seconds` for the replicas.
    pub staleness_seconds: u64,
    pub revocation_bound: f64,
    pub recovery_bound: Duration,
    pub rotate_every_seconds: u64,
    pub report: PathBuf,
    pub program: PathBuf,
    pub prefix: Vec<String>,
}

const PHASES: [&str; 7] = [
    "setup",
    "single_node",
    "steady",
    "replica_killed",
    "store_stopped",
    "connections_exhausted",
    "clock_skewed",
];

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn note(msg: &str) {
    eprintln!("chaos: {msg}");
}

struct Phase {
    name: &'static str,
    start: f64,
    end: f64,
    fault: Value,
}

/// Polls until every target answers `/readyz` 200 and the job token's
/// `whoami` 200; returns the seconds it took.
async fn until_healthy(w: &World, targets: &[Target], bound: Duration) -> Result<f64> {
    let started = Instant::now();
    let token = w.jobs.first().map(|j| j.token.clone()).unwrap_or_default();
    'poll: loop {
        if started.elapsed() > bound {
            bail!("not every replica recovered within {bound:?}");
        }
        for t in targets {
            let ready = w.http.get(format!("{}/readyz", t.api)).send().await;
            let who = w
                .http
                .get(format!("{}/v1/auth/whoami", t.api))
                .bearer_auth(&token)
                .send()
                .await;
            let good =
                matches!((ready, who), (Ok(r), Ok(o)) if r.status() == 200 && o.status() == 200);
            if !good {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue 'poll;
            }
        }
        return Ok(started.elapsed().as_secs_f64());
    }
}

/// Runs the futures concurrently, results in order.
async fn futures_join<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}

pub async fn run(opts: Options) -> Result<bool> {
    let root = tempfile::Builder::new()
        .prefix("gatehouse-chaos")
        .tempdir()?;
    note(&format!(
        "{} form, {} agents, working in {}",
        opts.form,
        opts.agents,
        root.path().display()
    ));
    let pg = Arc::new(
        blocking(PrivatePg::start)
            .await
            .context("private PostgreSQL")?,
    );
    {
        let pg = pg.clone();
        blocking(move || pg.create_database("gatehouse")).await?;
    }
    let db_url = pg.url("gatehouse");
    note(&format!(
        "PostgreSQL on port {} (max_connections {})",
        pg.port,
        pg::MAX_CONNECTIONS
    ));

    let ca = upstream::TestCa::new(root.path())?;
    let real_value = format!("real-{}", random_hex(16));
    let (tls_addr, tls_seen) = upstream::tls_upstream(&ca, real_value.clone()).await?;
    let (tok_addr, tokens) = upstream::token_service().await?;
    let code = format!("chaos-{}", random_hex(12));
    let mut master = vec![0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        f.read_exact(&mut master)?;
    }
    use base64::Engine as _;
    let master = base64::engine::general_purpose::STANDARD.encode(&master);
    let launcher = Launcher {
        program: opts.program.clone(),
        prefix: opts.prefix.clone(),
        env: vec![
            ("GATEHOUSE_DATABASE_URL".into(), db_url.clone()),
            ("GATEHOUSE_MASTER_KEY".into(), master),
            ("GATEHOUSE_BOOTSTRAP_CODE".into(), code.clone()),
            (
                "GATEHOUSE_REVOCATION_MAX_STALENESS_SECONDS".into(),
                opts.staleness_seconds.to_string(),
            ),
            (
                "GATEHOUSE_EGRESS_ALLOW_PRIVATE_CIDRS".into(),
                "127.0.0.0/8".into(),
            ),
            (
                "GATEHOUSE_EGRESS_STATIC_HOSTS".into(),
                format!("{TUNNEL_HOST}=127.0.0.1,{SWAP_HOST}=127.0.0.1"),
            ),
            (
                "GATEHOUSE_EGRESS_ALLOWED_PORTS".into(),
                format!("80,443,{},{}", tls_addr.port(), tok_addr.port()),
            ),
            (
                "GATEHOUSE_EGRESS_EXTRA_ROOT_CERTS".into(),
                ca.pem_file.display().to_string(),
            ),
            ("RUST_LOG".into(), "warn".into()),
        ],
        config_toml: upstream::upstream_config(tok_addr, opts.rotate_every_seconds),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()?;
    let mut replicas = vec![
        Replica::new("a", root.path())?,
        Replica::new("b", root.path())?,
        Replica::new("c", root.path())?,
    ];
    let lb = Arc::new(Balancer::default());
    let rec = Arc::new(Recorder::new());
    let violations = Arc::new(Violations::default());

    // The first replica alone: the installation is claimed and set up there.
    replicas[0].start(&launcher, &http).await?;
    let a = target_of(&replicas[0]).context("a has no banner")?;
    lb.set(vec![a.clone()]);
    let seed = tokens.seed();
    let world = Arc::new(
        load::setup(
            &a,
            &code,
            &real_value,
            opts.agents,
            tls_addr.port(),
            &seed,
            lb.clone(),
            rec.clone(),
            violations.clone(),
            opts.revocation_bound,
        )
        .await?,
    );
    world
        .roots
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(ca.pem.clone());
    world.trust_cas_of(std::slice::from_ref(&a)).await?;

    let mut handles = Vec::new();
    for i in 0..opts.agents {
        handles.push(tokio::spawn(world.clone().agent(i)));
    }
    handles.push(tokio::spawn(
        world.clone().prober(Duration::from_millis(1000)),
    ));

    let mut phases: Vec<Phase> = Vec::new();
    let begin = |phases: &mut Vec<Phase>, name: &'static str| {
        let now = rec.now();
        if let Some(last) = phases.last_mut() {
            last.end = now;
        }
        let index = PHASES.iter().position(|p| *p == name).unwrap_or(0);
        rec.set_phase(index);
        phases.push(Phase {
            name,
            start: now,
            end: now,
            fault: Value::Null,
        });
        note(&format!("phase {name} (+{now:.1}s)"));
    };

    // Baseline: one node.
    begin(&mut phases, "single_node");
    tokio::time::sleep(opts.phase).await;

    // The cluster: two more replicas on the same store.
    rec.set_phase(0);
    for r in replicas.iter_mut().skip(1) {
        r.start(&launcher, &http).await?;
    }
    let targets: Vec<Target> = replicas.iter().filter_map(target_of).collect();
    world.trust_cas_of(&targets).await?;
    lb.set(targets.clone());
    begin(&mut phases, "steady");
    tokio::time::sleep(opts.phase).await;

    // Fault 1: a replica SIGKILLed, restarted.
    begin(&mut phases, "replica_killed");
    let t0 = Instant::now();
    lb.remove("b");
    replicas[1].kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let restart = Instant::now();
    replicas[1].start(&launcher, &http).await?;
    let ready_after = restart.elapsed().as_secs_f64();
    let b = target_of(&replicas[1]).context("b has no banner")?;
    world.trust_cas_of(std::slice::from_ref(&b)).await?;
    lb.add(b);
    let recovered = until_healthy(&world, &lb.all(), opts.recovery_bound).await;
    if let Err(e) = &recovered {
        violations.add(checks::RECOVERY, format!("after the kill: {e}"));
    }
    if let Some(p) = phases.last_mut() {
        p.fault = json!({
            "fault": "replica b SIGKILLed, restarted after 3 s",
            "restart_to_ready_seconds": ready_after,
            "kill_to_serving_seconds": t0.elapsed().as_secs_f64(),
        });
    }
    tokio::time::sleep(opts.phase.saturating_sub(t0.elapsed())).await;

    // Fault 2: PostgreSQL stopped immediately, restarted after the outage.
    begin(&mut phases, "store_stopped");
    let pids: Vec<Option<u32>> = replicas.iter().map(Replica::pid).collect();
    let stopped_at = rec.now();
    {
        let pg = pg.clone();
        blocking(move || pg.stop_immediate()).await?;
    }
    let fail_closed_from = stopped_at + opts.staleness_seconds as f64 + 1.0;
    // `/readyz` of every replica, probed together every half second
    // from the bound on: (status, milliseconds to answer).
    let mut readyz_seen: BTreeMap<String, Vec<(u16, u64)>> = BTreeMap::new();
    let outage_end = Instant::now() + opts.outage;
    while Instant::now() < outage_end {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if rec.now() < fail_closed_from {
            continue;
        }
        let probes = lb.all().into_iter().map(|t| {
            let http = http.clone();
            async move {
                let started = Instant::now();
                let probe = http
                    .get(format!("{}/readyz", t.api))
                    .timeout(Duration::from_secs(10));
                let code = match probe.send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(e) if e.is_timeout() => load::TIMED_OUT,
                    Err(_) => load::NO_ANSWER,
                };
                (t.name, code, started.elapsed().as_millis() as u64)
            }
        });
        for (name, code, ms) in futures_join(probes).await {
            if code == 200 {
                violations.add(
                    checks::FAIL_CLOSED,
                    format!("{name} /readyz 200 while the store was away"),
                );
            }
            readyz_seen.entry(name).or_default().push((code, ms));
        }
    }
    let restarted_at = rec.now();
    {
        let pg = pg.clone();
        blocking(move || pg.pg_ctl_start()).await?;
    }
    let recovery = until_healthy(&world, &lb.all(), opts.recovery_bound).await;
    let now_pids: Vec<Option<u32>> = replicas.iter().map(Replica::pid).collect();
    let all_alive = replicas.iter_mut().all(Replica::alive);
    if now_pids != pids || !all_alive {
        violations.add(
            checks::RECOVERY,
            "a replica restarted or died during the store outage",
        );
    }
    if let Err(e) = &recovery {
        violations.add(checks::RECOVERY, format!("after the store outage: {e}"));
    }
    if let Some(p) = phases.last_mut() {
        p.fault = json!({
            "fault": format!("PostgreSQL stopped (-m immediate) for {} s", opts.outage.as_secs()),
            "fail_closed_checked_from_seconds_after_stop": fail_closed_from - stopped_at,
            "readyz_during_outage": readyz_seen,
            "recovery_seconds": recovery.as_ref().ok(),
            "replicas_restarted": now_pids != pids,
        });
    }
    let outage_window = (fail_closed_from, restarted_at);
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Fault 3: PostgreSQL's connections exhausted by the harness.
    begin(&mut phases, "connections_exhausted");
    let held = pg::exhaust(&db_url, pg::MAX_CONNECTIONS as usize + 10).await;
    let held_count = held.len();
    note(&format!("holding {held_count} PostgreSQL connections"));
    tokio::time::sleep(opts.exhaustion).await;
    drop(held);
    let recovery = until_healthy(&world, &lb.all(), opts.recovery_bound).await;
    if let Err(e) = &recovery {
        violations.add(
            checks::RECOVERY,
            format!("after the connections came back: {e}"),
        );
    }
    let all_alive = replicas.iter_mut().all(Replica::alive);
    if !all_alive {
        violations.add(
            checks::RECOVERY,
            "a replica died while connections were exhausted",
        );
    }
    if let Some(p) = phases.last_mut() {
        p.fault = json!({
            "fault": format!("every free PostgreSQL connection held for {} s", opts.exhaustion.as_secs()),
            "connections_held": held_count,
            "recovery_seconds": recovery.as_ref().ok(),
        });
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Fault 4: one replica's clock skewed.
    begin(&mut phases, "clock_skewed");
    lb.remove("c");
    replicas[2].kill();
    replicas[2].clock_offset = Some(opts.skew_seconds);
    replicas[2].start(&launcher, &http).await?;
    let c = target_of(&replicas[2]).context("c has no banner")?;
    world.trust_cas_of(std::slice::from_ref(&c)).await?;
    lb.add(c);
    if let Some(p) = phases.last_mut() {
        p.fault = json!({"fault": format!("replica c restarted with its clock {} s ahead", opts.skew_seconds)});
    }
    tokio::time::sleep(opts.phase).await;

    // Drain.
    let end = rec.now();
    if let Some(last) = phases.last_mut() {
        last.end = end;
    }
    rec.set_phase(0);
    world.stop.store(true, Ordering::SeqCst);
    for h in handles {
        let _ = tokio::time::timeout(Duration::from_secs(15), h).await;
    }
    note("load stopped; checking the invariants");

    let samples = rec.samples();
    for v in checks::stale_allows(&samples, outage_window.0, outage_window.1) {
        violations.add(checks::FAIL_CLOSED, v);
    }
    let checked = checks::answers_within(&samples, outage_window.0, outage_window.1);
    if checked.is_empty() {
        violations.add(
            checks::FAIL_CLOSED,
            "no request fell inside the outage: nothing was checked",
        );
    }
    if let Some(p) = phases.iter_mut().find(|p| p.name == "store_stopped") {
        if let Some(f) = p.fault.as_object_mut() {
            f.insert("answers_inside_outage".into(), json!(checked));
        }
    }
    let final_checks = crate::store_checks::final_checks(
        &world,
        &lb.all(),
        &db_url,
        &tokens,
        &tls_seen,
        &launcher,
        root.path(),
    )
    .await?;

    // The report.
    let baseline_phase = phases.iter().find(|p| p.name == "single_node");
    let baseline = baseline_phase
        .map(|p| stats::summarise(&samples, 1, p.end - p.start))
        .unwrap_or_default();
    let phase_reports: Vec<Value> = phases
        .iter()
        .map(|p| {
            let index = PHASES.iter().position(|n| *n == p.name).unwrap_or(0);
            stats::phase_report(
                p.name,
                &samples,
                index,
                p.end - p.start,
                &baseline,
                &p.fault,
            )
        })
        .collect();
    let propagation: Vec<f64> = world
        .propagation
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|s| s * 1000.0)
        .collect();
    let all = violations.all();
    let invariants: Vec<Value> = [
        checks::REVOKED_ACCEPTED,
        checks::EXACTLY_ONCE,
        checks::ONE_ROTATOR,
        checks::AUDIT_CHAIN,
        checks::FAIL_CLOSED,
        checks::RECOVERY,
        checks::NOTHING_LOST,
        checks::SWAP,
    ]
    .iter()
    .map(|name| json!({"invariant": name, "held": !all.iter().any(|v| v.invariant == *name)}))
    .collect();
    let passed = all.is_empty();
    let report = json!({
        "form": opts.form,
        "agents": opts.agents,
        "replicas": 3,
        "postgres_max_connections": pg::MAX_CONNECTIONS,
        "revocation_max_staleness_seconds": opts.staleness_seconds,
        "revocation_bound_seconds": opts.revocation_bound,
        "phases": phase_reports,
        "revocation": {
            "probes": propagation.len(),
            "propagation_p50_ms": stats::percentile(&propagation, 50.0),
            "propagation_p99_ms": stats::percentile(&propagation, 99.0),
            "propagation_max_ms": propagation.iter().copied().fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
        },
        "checks": final_checks,
        "invariants": invariants,
        "violations": all,
        "passed": passed,
    });
    if let Some(dir) = opts.report.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&opts.report, serde_json::to_string_pretty(&report)?)?;
    print_summary(&report);
    note(&format!("report written to {}", opts.report.display()));
    if !passed {
        note(&format!("PostgreSQL log tail:\n{}", tail(&pg.log(), 20)));
        for r in &replicas {
            note(&format!(
                "replica {} log tail:\n{}",
                r.name,
                r.stderr_tail()
            ));
        }
    }
    drop(replicas);
    Ok(passed)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn print_summary(report: &Value) {
    println!("phase                  ok/s    x1node  whoami p50/p99 ms   intercept p50/p99 ms");
    for p in report["phases"].as_array().into_iter().flatten() {
        let op = |name: &str, q: &str| {
            p["ops"][name][q]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.1}"))
        };
        println!(
            "{:<22} {:>6}  {:>6}  {:>8}/{:<8}  {:>8}/{:<8}",
            p["name"].as_str().unwrap_or(""),
            p["ok_per_second"],
            p["ratios_to_single_node"]["ok_per_second"],
            op("whoami", "p50_ms"),
            op("whoami", "p99_ms"),
            op("intercept", "p50_ms"),
            op("intercept", "p99_ms"),
        );
    }
    for i in report["invariants"].as_array().into_iter().flatten() {
        println!(
            "{} {}",
            if i["held"] == true {
                "HELD    "
            } else {
                "VIOLATED"
            },
            i["invariant"].as_str().unwrap_or("")
        );
    }
}
