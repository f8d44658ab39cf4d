//! The `gatehouse` command line: a thin layer over the API and store
//! crates. Commands that read the store take the same configuration as
//! `serve` (file, environment, `--database-url`); commands that talk to a
//! running server take `GATEHOUSE_URL` and `GATEHOUSE_TOKEN`.
#![forbid(unsafe_code)]

mod approvals;
mod cli;
mod commands;
pub mod exec;
mod logging;
mod mcp;
mod remote;
mod upstream;

use std::process::ExitCode;

pub fn run() -> ExitCode {
    run_from(std::env::args_os())
}

/// [`run`] with the arguments given (the first is the program name): how a
/// tool that embeds Gatehouse, such as the chaos harness, runs
/// `gatehouse serve` as its own child process.
pub fn run_from(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    use clap::Parser;
    let cli = cli::Cli::parse_from(args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gatehouse: {e:#}");
            ExitCode::FAILURE
        }
    }
}
