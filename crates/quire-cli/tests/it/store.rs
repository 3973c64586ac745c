//! Builders anywhere: `quire build` with `--store` (the test SeaweedFS) and `--registry` (the
//! test PostgreSQL) publishes the index; another machine's data dir, which does not exist yet,
//! answers a query on it, fetched on first use; GC keeps the fresh build unless told not to,
//! and reports the abandoned uploads and unused embedding packs it deletes.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::common::{Run, cmd, handbook};
use crate::serve::{remote, sigterm, start_server_with, wait_exit};

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

/// An abandoned upload (two objects) and a pack of a model no index uses in the directory store
/// at `store`, last written `age` ago: the upload's directory, the pack's file, and what a GC
/// report lists for them (`deleted_uploads`, `deleted_packs`).
fn abandoned_upload_and_unused_pack(
    store: &Path,
    age: Duration,
) -> (PathBuf, PathBuf, serde_json::Value, serde_json::Value) {
    let (index, digest, namespace) = (
        format!("idx-{}", "7".repeat(64)),
        "8".repeat(64),
        "0".repeat(64),
    );
    let upload = store.join("indexes").join(&index).join(&digest);
    let pack = store
        .join("embed-cache")
        .join(&namespace)
        .join(format!("{}.pack", "1".repeat(64)));
    let written = SystemTime::now() - age;
    for file in [
        upload.join("vectors.f32"),
        upload.join("chunks.jsonl"),
        pack.clone(),
    ] {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"bytes").unwrap();
        let file = std::fs::File::options().write(true).open(&file).unwrap();
        file.set_modified(written).unwrap();
    }
    let uploads = json!([{"index_id": index, "content_digest": digest, "objects": 2}]);
    let packs = json!([{"namespace": namespace, "packs": 1}]);
    (upload, pack, uploads, packs)
}

/// `quire gc` on a shared directory store names the abandoned upload and the embedding packs
/// no index uses, in text and JSON; dry, it names them and leaves them.
#[test]
fn gc_reports_the_abandoned_uploads_and_embedding_packs_it_deletes() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = dir.path().join("store");
    let (upload, pack, uploads, packs) = abandoned_upload_and_unused_pack(&store, Duration::ZERO);
    let url = format!("file://{}", store.display());
    let run = |args: &[&str]| -> Run {
        let mut command = cmd(&dir.path().join("data"), args);
        command.env("QUIRE_STORE", &url);
        command.output().unwrap().into()
    };

    let dry = run(&["gc", "--dry-run", "--keep-fresh-secs", "0"]).ok();
    let (index, digest) = (&uploads[0]["index_id"], &uploads[0]["content_digest"]);
    let namespace = &packs[0]["namespace"];
    for line in [
        format!("would delete abandoned upload {index}/{digest} (2 objects)"),
        format!("would delete embedding cache {namespace} (1 pack)"),
    ] {
        let line = line.replace('"', "");
        assert!(dry.stdout.contains(&line), "{line}: {}", dry.stdout);
    }
    assert!(upload.join("vectors.f32").exists() && pack.exists(), "dry");

    let fresh = ["--json", "gc", "--keep-fresh-secs", "0", "--reason", "tidy"];
    let report = run(&fresh).ok().json();
    assert_eq!(report["deleted_uploads"], uploads, "{report}");
    assert_eq!(report["deleted_packs"], packs, "{report}");
    assert!(!upload.join("vectors.f32").exists(), "{report}");
    assert!(!pack.exists(), "{report}");
}

/// The same over gRPC: a server on the shared store (its keep-fresh window the default hour,
/// the objects two hours old) reports both to the remote CLI, dry and not.
#[test]
fn remote_gc_reports_the_abandoned_uploads_and_embedding_packs_it_deletes() {
    let dir = tempfile::TempDir::new().unwrap();
    let store = dir.path().join("store");
    let two_hours = Duration::from_secs(2 * 3600);
    let (upload, pack, uploads, packs) = abandoned_upload_and_unused_pack(&store, two_hours);
    let url = format!("file://{}", store.display());
    let (mut server, addr) = start_server_with(&dir.path().join("data"), &["--store", &url], &[]);
    let gc = |args: &[&str]| -> serde_json::Value {
        Run::from(remote(&addr, args).output().unwrap()).ok().json()
    };
    let dry = gc(&["--json", "gc", "--dry-run"]);
    let survived = upload.join("vectors.f32").exists() && pack.exists();
    let report = gc(&["--json", "gc", "--reason", "tidy"]);
    sigterm(&server);
    wait_exit(&mut server, Duration::from_secs(30));

    assert_eq!(dry["dry_run"], json!(true), "{dry}");
    assert!(survived, "the dry run deleted files");
    for report in [&dry, &report] {
        assert_eq!(report["deleted_uploads"], uploads, "{report}");
        assert_eq!(report["deleted_packs"], packs, "{report}");
    }
    assert!(!upload.join("vectors.f32").exists(), "{report}");
    assert!(!pack.exists(), "{report}");
}
