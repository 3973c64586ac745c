//! Builders anywhere: `quire build` with `--store` (the test SeaweedFS) and `--registry` (the
//! test PostgreSQL) publishes the index; another machine's data dir, which does not exist yet,
//! answers a query on it, fetched on first use; GC keeps the fresh build unless told not to,
//! and reports the abandoned uploads and unused embedding packs it deletes.

use std::path::Path;

use crate::common::{Run, cmd, handbook};

#[test]
fn a_build_published_to_the_shared_store_is_queried_from_a_new_data_dir() {
    let Some(s3) = quire_testkit::s3() else {
        return;
    };
    let Some(registry) = quire_testkit::pg::fresh_database() else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let store = format!("{}/{}", s3.url, quire_testkit::paths::unique("cli"));
    let run = |data: &str, args: &[&str]| -> Run {
        let mut command = cmd(&dir.path().join(data), args);
        command
            .env("QUIRE_STORE", &store)
            .env("QUIRE_STORE_ENDPOINT", &s3.endpoint)
            .env("QUIRE_REGISTRY", &registry)
            .env("AWS_ACCESS_KEY_ID", &s3.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &s3.secret_access_key)
            .env_remove("AWS_SESSION_TOKEN");
        command.output().unwrap().into()
    };
    run("builder", &["registry", "migrate"]).ok();
    let corpus = handbook();
    let built = run("builder", &["--json", "build", corpus.to_str().unwrap()])
        .ok()
        .json();
    let (index, digest) = (
        built["index_id"].as_str().unwrap(),
        &built["content_digest"],
    );

    let query = [
        "--json",
        "query",
        index,
        "parental leave",
        "--group",
        "all-staff",
    ];
    let answer = run("replica", &query).ok().json();
    assert!(!answer["hits"].as_array().unwrap().is_empty(), "{answer}");
    assert_eq!(&answer["lineage"]["content_digest"], digest, "{answer}");
    let shown = run("replica", &["--json", "show", &index[..16]])
        .ok()
        .json();
    assert_eq!(&shown["content_digest"], digest, "{shown}");
    let audit = run("replica", &["--json", "audit", "log"]).ok().json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let builds = actions.iter().filter(|a| **a == "index.build").count();
    assert_eq!(builds, 1, "one registry for both machines: {audit}");

    // GC keeps the build (made a moment ago, nothing holds it yet); without that window it goes.
    let kept = run("builder", &["--json", "gc", "--reason", "tidy"])
        .ok()
        .json();
    assert_eq!(kept["deleted_indexes"], serde_json::json!([]), "{kept}");
    assert!(
        kept["kept"][index].to_string().contains("alias or pin it"),
        "{kept}"
    );
    let fresh = ["--json", "gc", "--keep-fresh-secs", "0", "--reason", "tidy"];
    let gone = run("builder", &fresh).ok().json();
    assert_eq!(
        gone["deleted_indexes"],
        serde_json::json!([index]),
        "{gone}"
    );

    // Without credentials the store is refused naming the variables, not the secret.
    let mut bare = cmd(&dir.path().join("other"), &["indexes"]);
    bare.env("QUIRE_STORE", &store)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let refused = Run::from(bare.output().unwrap());
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("AWS_ACCESS_KEY_ID"),
        "{}",
        refused.stderr
    );
}

/// `quire gc` on a shared directory store names the abandoned upload and the embedding packs
/// no index uses, in text and JSON; dry, it names them and leaves them.
#[test]
fn gc_reports_the_abandoned_uploads_and_embedding_packs_it_deletes() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = dir.path().join("store");
    let (index, digest, namespace) = (
        format!("idx-{}", "7".repeat(64)),
        "8".repeat(64),
        "0".repeat(64),
    );
    let upload = store.join("indexes").join(&index).join(&digest);
    let packs = store.join("embed-cache").join(&namespace);
    let put = |dir: &Path, name: &str| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), b"bytes").unwrap();
    };
    put(&upload, "vectors.f32");
    put(&upload, "chunks.jsonl");
    put(&packs, &format!("{}.pack", "1".repeat(64)));
    let url = format!("file://{}", store.display());
    let run = |args: &[&str]| -> Run {
        let mut command = cmd(&dir.path().join("data"), args);
        command.env("QUIRE_STORE", &url);
        command.output().unwrap().into()
    };

    let dry = run(&["gc", "--dry-run", "--keep-fresh-secs", "0"]).ok();
    for line in [
        format!("would delete abandoned upload {index}/{digest} (2 objects)"),
        format!("would delete embedding cache {namespace} (1 packs)"),
    ] {
        assert!(dry.stdout.contains(&line), "{line}: {}", dry.stdout);
    }
    assert!(upload.join("vectors.f32").exists() && packs.exists(), "dry");

    let fresh = ["--json", "gc", "--keep-fresh-secs", "0", "--reason", "tidy"];
    let report = run(&fresh).ok().json();
    assert_eq!(
        report["deleted_uploads"],
        serde_json::json!([{"index_id": index, "content_digest": digest, "objects": 2}]),
        "{report}"
    );
    assert_eq!(
        report["deleted_packs"],
        serde_json::json!([{"namespace": namespace, "packs": 1}]),
        "{report}"
    );
    assert!(!upload.join("vectors.f32").exists(), "{report}");
    assert!(!packs.join(format!("{}.pack", "1".repeat(64))).exists());
}
