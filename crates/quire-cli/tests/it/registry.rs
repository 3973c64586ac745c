//! A data dir whose registry lives in PostgreSQL (`--registry` / `QUIRE_REGISTRY`): migrate,
//! then import, build, alias and audit through it, while the redb default stays untouched.

use std::time::Duration;

use crate::common::{Run, cmd, handbook, quire};
use crate::serve::{KillOnDrop, remote, sigterm, start_server_with, wait_exit};

#[test]
fn a_data_dir_keeps_its_registry_in_postgres() {
    let Some(url) = quire_testkit::pg::fresh_database() else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let corpus = handbook();
    let import = ["--json", "import", corpus.to_str().unwrap()];
    let with = |args: &[&str]| {
        let mut all = vec!["--registry", url.as_str()];
        all.extend_from_slice(args);
        quire(&data, &all)
    };
    let refused = with(&import);
    assert_eq!(refused.code, 1, "an unmigrated registry is refused");
    assert!(
        refused.stderr.contains("quire registry migrate"),
        "{}",
        refused.stderr
    );
    let migrated = with(&["--json", "registry", "migrate"]).ok().json();
    let every: Vec<i32> = (1..=quire_registry_pg::SCHEMA_VERSION).collect();
    assert_eq!(migrated["applied"], serde_json::json!(every));
    let again = with(&["--json", "registry", "migrate"]).ok().json();
    assert_eq!(again["applied"], serde_json::json!([]));
    assert_eq!(again["version"], quire_registry_pg::SCHEMA_VERSION);

    with(&import).ok();
    let built = with(&["--json", "build", corpus.to_str().unwrap()])
        .ok()
        .json();
    let index = built["index_id"].as_str().unwrap();
    with(&["alias", "set", "prod", index, "--reason", "first"]).ok();
    // The environment variable names it too, for readers as well as writers.
    let shown = cmd(&data, &["--json", "alias", "show", "prod"])
        .env("QUIRE_REGISTRY", &url)
        .output()
        .unwrap();
    let shown = Run::from(shown).ok().json();
    assert_eq!(shown["revision"], 1, "{shown}");
    let verified = with(&["--json", "audit", "verify"]).ok().json();
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["events"], 3, "import, build and alias: {verified}");
    // The data dir's own registry was never created: without --registry there is no alias.
    assert!(!data.join(quire_store::REGISTRY_FILE).exists());
    let local = quire(&data, &["alias", "show", "prod"]);
    assert_ne!(local.code, 0, "{}", local.stdout);
}

#[test]
fn registry_urls_are_checked_without_echoing_them() {
    let dir = tempfile::TempDir::new().unwrap();
    let bad = quire(
        dir.path(),
        &[
            "--registry",
            "mysql://user:pw-s3cret@h/db",
            "registry",
            "migrate",
        ],
    );
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("--registry"), "{}", bad.stderr);
    assert!(!bad.stderr.contains("pw-s3cret"), "{}", bad.stderr);
    let redb = quire(dir.path(), &["registry", "migrate"]);
    assert!(redb.stderr.contains("needs --registry"), "{}", redb.stderr);
}

#[test]
fn the_server_keeps_its_registry_in_postgres() {
    let Some(url) = quire_testkit::pg::fresh_database() else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let (child, server) = start_server_with(&data, &["--registry", &url], &["--migrate-registry"]);
    let mut child = KillOnDrop(child);
    let run = |args: &[&str]| Run::from(remote(&server, args).output().unwrap()).ok();
    let demo = run(&["--json", "alias", "show", "handbook"]).json();
    assert_eq!(demo["revision"], 1, "{demo}");
    let index = demo["primary"].as_str().unwrap().to_owned();
    // A change through the gRPC server (its runtime calls the registry on the blocking pool).
    run(&[
        "alias",
        "set",
        "docs",
        &index,
        "--reason",
        "through the server",
    ]);
    let verified = run(&["--json", "audit", "verify"]).json();
    assert_eq!(verified["ok"], true, "{verified}");
    sigterm(&child.0);
    assert!(wait_exit(&mut child.0, Duration::from_secs(30)).success());
    // What the server committed is in the database, whoever reads it next.
    let docs = quire(
        &data,
        &["--registry", &url, "--json", "alias", "show", "docs"],
    )
    .ok()
    .json();
    assert_eq!(docs["primary"], index.as_str());
    assert!(!data.join(quire_store::REGISTRY_FILE).exists());
}
