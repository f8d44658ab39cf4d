//! `gatehouse-chaos`: three `gatehouse serve` replicas on a private
//! PostgreSQL under load from concurrent agents, while a replica is
//! killed, the database crashes, its connections run out and a clock is
//! skewed; the invariants are checked and a JSON report written.
//!
//! `cargo run --release -p gatehouse-chaos -- --short` (CI: about a
//! minute and a half of load) or `-- --long`. The replicas are this same
//! program run as `gatehouse-chaos gatehouse serve` (it embeds the
//! `gatehouse` command line, so what runs is what this was built from);
//! `--gatehouse PATH` runs a given `gatehouse` binary instead.
#![forbid(unsafe_code)]

mod checks;
mod cluster;
mod load;
mod pg;
mod scenario;
mod stats;
mod store_checks;
mod upstream;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "gatehouse-chaos",
    about = "Gatehouse replicas under load and faults"
)]
struct Args {
    /// The short form (CI): a few seconds per phase. The default.
    #[arg(long, conflicts_with = "long")]
    short: bool,
    /// The long form: a minute per phase, more agents.
    #[arg(long)]
    long: bool,
    /// Concurrent agents (default: 8 short, 32 long).
    #[arg(long)]
    agents: Option<usize>,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/chaos-report.json")]
    report: PathBuf,
    /// A `gatehouse` binary to run as the replicas (default: this program).
    #[arg(long)]
    gatehouse: Option<PathBuf>,
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "gatehouse") {
        return gatehouse::run_from(argv.into_iter().skip(1));
    }
    let args = Args::parse_from(argv);
    let program = match &args.gatehouse {
        Some(p) => p.clone(),
        None => match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("gatehouse-chaos: cannot find this program: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let prefix = if args.gatehouse.is_some() {
        Vec::new()
    } else {
        vec!["gatehouse".to_string()]
    };
    let long = args.long;
    let opts = scenario::Options {
        form: if long { "long" } else { "short" },
        agents: args.agents.unwrap_or(if long { 32 } else { 8 }),
        phase: Duration::from_secs(if long { 60 } else { 8 }),
        outage: Duration::from_secs(10),
        exhaustion: Duration::from_secs(if long { 20 } else { 6 }),
        skew_seconds: 20,
        staleness_seconds: 2,
        revocation_bound: 1.0,
        recovery_bound: Duration::from_secs(30),
        rotate_every_seconds: 3,
        report: args.report,
        program,
        prefix,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse-chaos: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(scenario::run(opts)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("gatehouse-chaos: invariants violated (see the report)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("gatehouse-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}
