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

/// A test-only key of `crates/quire-testkit/fixtures/jwt` (`rs256`, `es256`, `eddsa`, `other`
/// with `.key.pem` or `.pub.pem`): end users' JWTs are signed and checked with them.
pub fn jwt_fixture(name: &str) -> PathBuf {
    workspace()
        .join("crates/quire-testkit/fixtures/jwt")
        .join(name)
}

/// `prefix` and a suffix no other call, test process or run has (process id, a counter, the
/// time): names of databases, key prefixes.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0)
    )
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
    let what = format!(
        "pytrec_eval, imported by {} (run scripts/fetch-pytrec-eval)",
        python.display()
    );
    python_that_imports(python, "import pytrec_eval", &what)
}

/// The Python client's test environment, `.venv-python-client/bin/python`
/// (`scripts/fetch-python-client-deps` makes it), when it imports the client, the frameworks
/// and pytest. Absent: a skip, or under CI a panic.
pub fn python_client_venv() -> Option<PathBuf> {
    let python = workspace().join(".venv-python-client/bin/python");
    let what = format!(
        "the Python client's venv, {} (run scripts/fetch-python-client-deps)",
        python.display()
    );
    python_that_imports(
        python,
        "import quire.langchain, quire.llama_index, pytest, pytest_asyncio, grpc_tools",
        &what,
    )
}

/// `python` when it runs `imports` without error; otherwise a skip naming `what`, or under CI a
/// panic.
fn python_that_imports(python: PathBuf, imports: &str, what: &str) -> Option<PathBuf> {
    let ok = std::process::Command::new(&python)
        .args(["-c", imports])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    assert!(
        !in_ci(),
        "CI=true: {what} is absent (a CI run must not skip it)"
    );
    eprintln!("skipping: {what} is absent");
    None
}

/// A variable `scripts/test-services start` sets: from the environment, else from the line the
/// script wrote to `target/test-services.env`.
fn service_var(name: &str) -> Option<String> {
    if let Some(value) = std::env::var(name).ok().filter(|u| !u.is_empty()) {
        return Some(value);
    }
    let file = workspace().join("target/test-services.env");
    let prefix = format!("export {name}=");
    std::fs::read_to_string(&file).ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
    })
}

/// Under CI a panic saying the service behind `var` is missing, else a "skipping" message.
fn service_missing(var: &str, what: &str) {
    assert!(
        !in_ci(),
        "CI=true: {var} is not set and target/test-services.env names no {what}: start it with \
         `eval \"$(scripts/test-services start)\"` (a CI run must not skip these tests)"
    );
    eprintln!("skipping: no test {what} ({var} unset; run `scripts/test-services start`)");
}

/// The test PostgreSQL server's URL (`scripts/test-services start` starts one): the
/// `QUIRE_TEST_POSTGRES_URL` variable, else the line the script wrote to
/// `target/test-services.env`. Absent: under CI a panic, else a "skipping" message and `None`.
pub fn postgres() -> Option<String> {
    const VAR: &str = "QUIRE_TEST_POSTGRES_URL";
    let url = service_var(VAR);
    if url.is_none() {
        service_missing(VAR, "PostgreSQL");
    }
    url
}

/// The test S3 store (SeaweedFS, which `scripts/test-services start` starts).
#[derive(Clone, Debug)]
pub struct S3 {
    /// `s3://bucket` (`QUIRE_TEST_S3_URL`).
    pub url: String,
    /// `http://127.0.0.1:PORT` (`QUIRE_TEST_S3_ENDPOINT`).
    pub endpoint: String,
    /// `QUIRE_TEST_S3_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `QUIRE_TEST_S3_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
}

/// The test S3 store, from the `QUIRE_TEST_S3_*` variables or `target/test-services.env`.
/// Absent: under CI a panic, else a "skipping" message and `None`.
pub fn s3() -> Option<S3> {
    const VAR: &str = "QUIRE_TEST_S3_URL";
    let found = (|| {
        Some(S3 {
            url: service_var(VAR)?,
            endpoint: service_var("QUIRE_TEST_S3_ENDPOINT")?,
            access_key_id: service_var("QUIRE_TEST_S3_ACCESS_KEY_ID")?,
            secret_access_key: service_var("QUIRE_TEST_S3_SECRET_ACCESS_KEY")?,
        })
    })();
    if found.is_none() {
        service_missing(VAR, "S3 store (SeaweedFS)");
    }
    found
}
