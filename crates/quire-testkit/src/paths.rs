//! Where fixtures live, and what a test does when one is missing.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The bundled handbook corpus (a directory with `quire-acl.toml`).
pub fn handbook() -> PathBuf {
    workspace().join("corpora/handbook")
}

/// Whether this run is CI (`CI=true`), where a missing fixture fails instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `path` when `probe` (a file inside it) exists. Otherwise: under CI a panic naming it, else a
/// "skipping" message and `None`.
pub fn required(path: PathBuf, probe: &str, what: &str) -> Option<PathBuf> {
    if path.join(probe).exists() {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "CI=true: {what} is absent at {} (a CI run must not skip it)",
        path.display()
    );
    eprintln!("skipping: {what} is absent");
    None
}

/// SciFact (BEIR) from `../shared/datasets/scifact`.
pub fn scifact() -> Option<PathBuf> {
    required(
        workspace().join("../shared/datasets/scifact"),
        "corpus.jsonl",
        "../shared/datasets/scifact (SciFact tests need the shared datasets)",
    )
}

/// The directory local models live in (`scripts/fetch-model` fills it).
pub fn models_dir() -> PathBuf {
    workspace().join("models")
}

/// all-MiniLM-L6-v2 under `models/`.
pub fn minilm() -> Option<PathBuf> {
    required(
        models_dir().join("all-minilm-l6-v2"),
        "model.safetensors",
        "models/all-minilm-l6-v2 (run scripts/fetch-model)",
    )
}

/// A Python that imports pytrec_eval: `QUIRE_PYTREC_PYTHON`, else `.venv-pytrec/bin/python`
/// (`scripts/fetch-pytrec-eval` makes it). Absent: a skip, or under CI a panic.
pub fn pytrec_python() -> Option<PathBuf> {
    let python = std::env::var_os("QUIRE_PYTREC_PYTHON").map_or_else(
        || workspace().join(".venv-pytrec/bin/python"),
        PathBuf::from,
    );
    let imports = std::process::Command::new(&python)
        .args(["-c", "import pytrec_eval"])
        .output()
        .is_ok_and(|o| o.status.success());
    if imports {
        return Some(python);
    }
    let what = format!(
        "pytrec_eval, imported by {} (run scripts/fetch-pytrec-eval)",
        python.display()
    );
    assert!(
        !in_ci(),
        "CI=true: {what} is absent (a CI run must not skip it)"
    );
    eprintln!("skipping: {what} is absent");
    None
}

/// The test PostgreSQL server's URL (`scripts/test-services start` starts one): the
/// `QUIRE_TEST_POSTGRES_URL` variable, else the line the script wrote to
/// `target/test-services.env`. Absent: under CI a panic, else a "skipping" message and `None`.
pub fn postgres() -> Option<String> {
    const VAR: &str = "QUIRE_TEST_POSTGRES_URL";
    if let Some(url) = std::env::var(VAR).ok().filter(|u| !u.is_empty()) {
        return Some(url);
    }
    let file = workspace().join("target/test-services.env");
    let prefix = format!("export {VAR}=");
    if let Some(url) = std::fs::read_to_string(&file).ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
    }) {
        return Some(url);
    }
    assert!(
        !in_ci(),
        "CI=true: {VAR} is not set and {} names no server: start PostgreSQL with \
         `eval \"$(scripts/test-services start)\"` (a CI run must not skip these tests)",
        file.display()
    );
    eprintln!("skipping: no test PostgreSQL ({VAR} unset; run `scripts/test-services start`)");
    None
}
