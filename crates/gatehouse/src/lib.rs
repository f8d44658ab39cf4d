//! The `gatehouse` command line: a thin layer over the API and store
//! crates. Commands that read the store take the same configuration as
//! `serve` (file, environment, `--database-url`); commands that talk to a
//! running server take `GATEHOUSE_URL` and `GATEHOUSE_TOKEN`.
#![forbid(unsafe_code)]

mod approvals;
mod cli;
mod commands;
mod exec;
mod logging;
mod mcp;
mod remote;
mod upstream;

use std::process::ExitCode;

pub fn run() -> ExitCode {
    use clap::Parser;
    let cli = cli::Cli::parse();
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
