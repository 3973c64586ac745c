//! The Python client's pytest suite (`clients/python/tests`: the sync and asyncio clients, the
//! LangChain and LlamaIndex retrievers, the README's Python snippets, the checked-in stubs)
//! against this `quire` binary, which the suite starts as a real server on a loopback port.
//! Needs `.venv-python-client` (`scripts/fetch-python-client-deps`): without it the test skips,
//! under CI it fails.

use std::process::Command;

use crate::common;

#[test]
fn python_client_suite_passes_against_the_binary() {
    let Some(python) = quire_testkit::python_client_venv() else {
        return;
    };
    // A self-signed certificate for the suite's TLS server (Python has no generator at hand).
    let tls = tempfile::TempDir::new().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    std::fs::write(tls.path().join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        tls.path().join("key.pem"),
        certified.signing_key.serialize_pem(),
    )
    .unwrap();
    let out = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "clients/python/tests",
        ])
        .current_dir(common::workspace())
        .env("QUIRE_BIN", common::bin())
        .env("QUIRE_TEST_TLS_DIR", tls.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("QUIRE_SERVER")
        .env_remove("QUIRE_TOKEN")
        .env_remove("QUIRE_DATA")
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pytest clients/python/tests failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.contains(" passed") && !summary.contains("skipped"),
        "pytest passed without running every test: {summary}"
    );
}
