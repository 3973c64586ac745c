//! Helpers for driving the `quire` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The bundled handbook corpus.
pub fn handbook() -> PathBuf {
    workspace().join("corpora/handbook")
}

/// SciFact from the shared datasets, when present.
pub fn scifact() -> Option<PathBuf> {
    let path = workspace().join("../shared/datasets/scifact");
    if path.join("corpus.jsonl").exists() {
        Some(path)
    } else {
        eprintln!(
            "skipping: ../shared/datasets/scifact is absent (SciFact tests need the shared datasets)"
        );
        None
    }
}

/// A finished `quire` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

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

/// A command for `quire --data DATA ARGS...`.
pub fn cmd(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_quire"));
    c.arg("--data").arg(data).args(args);
    c.env_remove("QUIRE_DATA");
    c
}

/// Run `quire --data DATA ARGS...`.
pub fn quire(data: &Path, args: &[&str]) -> Run {
    cmd(data, args).output().expect("spawn quire").into()
}

/// Every file under `dir` with its bytes, sorted by relative path. The registry database is
/// represented by what it holds (the audit log, aliases and pins as `quire` prints them), not
/// its bytes: redb rewrites its own bookkeeping pages whenever a writer closes it.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    if dir.join("registry.redb").exists() {
        out.retain(|(rel, _)| rel != "registry.redb");
        for args in [
            &["--json", "audit", "log"][..],
            &["--json", "alias", "list"],
            &["--json", "pins"],
        ] {
            let run = quire(dir, args);
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
