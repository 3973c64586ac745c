//! The `quire` binary under test, driven through quire-testkit's CLI driver.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub use quire_testkit::cli::Run;
pub use quire_testkit::{handbook, scifact, workspace};

/// The `quire` binary cargo built for these tests.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_quire"))
}

/// A command for `quire --data DATA ARGS...`.
pub fn cmd(data: &Path, args: &[&str]) -> Command {
    quire_testkit::cli::cmd(bin(), data, args)
}

/// Run `quire --data DATA ARGS...`.
pub fn quire(data: &Path, args: &[&str]) -> Run {
    quire_testkit::cli::quire(bin(), data, args)
}

/// Every file under `dir` with its bytes, the registry by what it holds
/// ([`quire_testkit::cli::tree`]).
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    quire_testkit::cli::tree(bin(), dir)
}

/// Run `quire --data DATA ARGS...` with its address space capped at 2 GiB (`ulimit -v`): a read
/// without a bound aborts there instead of exhausting the machine.
pub fn quire_capped(data: &Path, args: &[&str]) -> Run {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("ulimit -v 2097152 && exec \"$0\" \"$@\"")
        .arg(bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("QUIRE_DATA")
        .env_remove("QUIRE_SERVER");
    c.output().expect("spawn sh").into()
}
