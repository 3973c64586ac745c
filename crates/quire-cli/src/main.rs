//! `quire`: build reproducible, hash-addressed hybrid indices and inspect them.
//!
//! Every subcommand works on a data dir (`--data`, default `./quire-data`). Global flags go
//! before the subcommand: `quire [--data DIR] [--json] <command> ...`.
//!
//! Exit codes: 0 success; 1 error (bad input, missing id, locked data dir, ...); 2 usage;
//! 3 a check ran and failed (`verify`, `rebuild-check`).

mod acl_report;
mod args;
mod canary;
mod commands;
mod config_file;
mod eval;
mod output;
mod progress;
mod release;
mod serve_cmd;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::output::Outcome;

/// `quire --version`: the crate version and the git commit it was built from (`unknown`
/// when built outside a git checkout, e.g. from a source tarball; see build.rs).
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("QUIRE_GIT_COMMIT"),
    ")"
);

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` installs its own, once it has read server.toml (which may name a trace exporter).
    if !matches!(cli.command, Command::Serve { .. }) {
        let _ = quire_server::telemetry::install("warn", None);
    }
    let progress = !cli.json && std::io::stderr().is_terminal();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: starting the async runtime: {err}"
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(&cli, progress)) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(3),
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
