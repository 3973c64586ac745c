//! Driving the `quire` binary: run it against a data dir, read its output, snapshot a data dir.

use std::path::Path;
use std::process::{Command, Output};

/// A finished `quire` run.
pub struct Run {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as JSON (panics, showing it, when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Assert the run succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "quire failed: {}{}", self.stdout, self.stderr);
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A command for `BIN --data DATA ARGS...` (`BIN` is the `quire` binary under test, e.g.
/// `env!("CARGO_BIN_EXE_quire")`).
pub fn cmd(bin: &Path, data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.arg("--data").arg(data).args(args);
    c.env_remove("QUIRE_DATA");
    c
}

/// Run `BIN --data DATA ARGS...`.
pub fn quire(bin: &Path, data: &Path, args: &[&str]) -> Run {
    cmd(bin, data, args).output().expect("spawn quire").into()
}

/// Every file under `dir` with its bytes, sorted by relative path. The registry database is
/// represented by what it holds (the audit log, aliases and pins as `quire` prints them), not
/// its bytes: redb rewrites its own bookkeeping pages whenever a writer closes it.
pub fn tree(bin: &Path, dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    if dir.join("registry.redb").exists() {
        out.retain(|(rel, _)| rel != "registry.redb");
        for args in [
            &["--json", "audit", "log"][..],
            &["--json", "alias", "list"],
            &["--json", "pins"],
        ] {
            let run = quire(bin, dir, args);
            assert_eq!(run.code, 0, "quire {args:?}: {}", run.stderr);
            out.push((
                format!("registry.redb: {}", args.join(" ")),
                run.stdout.into_bytes(),
            ));
        }
    }
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            out.push((rel, std::fs::read(&path).unwrap_or_default()));
        }
    }
}
