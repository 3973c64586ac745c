//! Records the git commit the binary is built from as `QUIRE_GIT_COMMIT` (for `quire
//! --version`): `$QUIRE_GIT_COMMIT` when set (a Docker build passes it in), else `git
//! rev-parse`, else `unknown` (a source tarball without `.git`, or no git installed).

use std::path::PathBuf;
use std::process::Command;

/// This crate's directory, read when the script runs: `env!` would bake in the directory the
/// script was compiled in, and cargo reuses one compiled script for every checkout that shares a
/// target dir.
fn manifest_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into()))
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(manifest_dir())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// Rebuild when `path` changes (only an existing path: a missing one would rerun every build).
fn watch(path: PathBuf) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=QUIRE_GIT_COMMIT");
    let given = std::env::var("QUIRE_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let commit = given.or_else(|| {
        // Rebuild when HEAD moves: HEAD itself, the branch it names, and packed refs.
        if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
            let dir = PathBuf::from(dir);
            watch(dir.join("HEAD"));
            if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
                let common = manifest_dir().join(common);
                watch(common.join("packed-refs"));
                if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                    watch(common.join(branch));
                }
            }
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    let commit = commit.unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=QUIRE_GIT_COMMIT={commit}");
}
