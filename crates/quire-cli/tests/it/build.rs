//! End-to-end tests of import, build, verify and rebuild-check through the `quire` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;

use common::{handbook, quire, scifact, tree};
use tempfile::TempDir;

fn build_json(data: &Path, corpus: &Path, threads: &str) -> serde_json::Value {
    build_with_spec(data, corpus, None, threads)
}

fn build_with_spec(
    data: &Path,
    corpus: &Path,
    spec: Option<&Path>,
    threads: &str,
) -> serde_json::Value {
    let mut args = vec!["--json", "build", corpus.to_str().unwrap_or_default()];
    if let Some(spec) = spec {
        args.extend(["--spec", spec.to_str().unwrap_or_default()]);
    }
    let out = common::cmd(data, &args)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("spawn quire");
    common::Run::from(out).ok().json()
}

/// The default spec with quire's own HNSW builder.
const QUIRE_BUILDER_SPEC: &str =
    "version = 1\n[hnsw]\nm = 16\nef_construction = 200\nef_search = 64\nbuilder = \"quire\"\n";

/// Builds of the same corpus in two data dirs with 1 and 2 threads (and, with quire's builder,
/// a third with 4) are byte-identical, except for the manifest's `build` section.
fn assert_reproducible(corpus: &Path) {
    assert_reproducible_with(corpus, None, &["1", "2"]);
    let specs = TempDir::new().unwrap();
    let spec = specs.path().join("quire-builder.toml");
    std::fs::write(&spec, QUIRE_BUILDER_SPEC).unwrap();
    assert_reproducible_with(corpus, Some(&spec), &["1", "2", "4"]);
}

fn assert_reproducible_with(corpus: &Path, spec: Option<&Path>, threads: &[&str]) {
    let first = TempDir::new().unwrap();
    let reference = build_with_spec(first.path(), corpus, spec, threads[0]);
    if spec.is_some() {
        let id = reference["index_id"].as_str().unwrap_or_default();
        let manifest = first.path().join("indexes").join(id).join("manifest.json");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
        assert_eq!(manifest["spec"]["hnsw"]["builder"], "quire");
    }
    for other_threads in &threads[1..] {
        let other = TempDir::new().unwrap();
        let built = build_with_spec(other.path(), corpus, spec, other_threads);
        assert_same_index(first.path(), &reference, other.path(), &built);
    }
}

fn assert_same_index(a: &Path, ja: &serde_json::Value, b: &Path, jb: &serde_json::Value) {
    assert_eq!(ja["index_id"], jb["index_id"]);
    assert_eq!(ja["content_digest"], jb["content_digest"]);
    let id = ja["index_id"].as_str().unwrap_or_default();
    let ta = tree(&a.join("indexes").join(id));
    let tb = tree(&b.join("indexes").join(id));
    assert_eq!(
        ta.iter().map(|f| &f.0).collect::<Vec<_>>(),
        tb.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((path, bytes_a), (_, bytes_b)) in ta.iter().zip(&tb) {
        if path == "manifest.json" {
            let mut ma: serde_json::Value = serde_json::from_slice(bytes_a).unwrap_or_default();
            let mut mb: serde_json::Value = serde_json::from_slice(bytes_b).unwrap_or_default();
            ma["build"] = serde_json::Value::Null;
            mb["build"] = serde_json::Value::Null;
            assert_eq!(ma, mb, "manifests differ outside `build`");
        } else {
            assert!(bytes_a == bytes_b, "{path} differs between builds");
        }
    }
    assert_eq!(
        ta.len(),
        13,
        "unexpected file set: {:?}",
        ta.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
}

#[test]
fn handbook_builds_are_byte_identical_across_data_dirs_and_threads() {
    assert_reproducible(&handbook());
}

#[test]
fn scifact_builds_are_byte_identical_across_data_dirs_and_threads() {
    if let Some(dir) = scifact() {
        assert_reproducible(&dir.join("corpus.jsonl"));
    }
}

#[test]
fn verify_names_any_flipped_file_and_rebuild_check_passes() {
    let data = TempDir::new().unwrap();
    let built = build_json(data.path(), &handbook(), "2");
    let id = built["index_id"].as_str().unwrap_or_default().to_owned();
    let short = &id[..16];
    let ok = quire(data.path(), &["--json", "verify", short]).ok().json();
    assert_eq!(ok["ok"], true);
    let check = quire(data.path(), &["--json", "rebuild-check", &id])
        .ok()
        .json();
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["rebuilt_content_digest"], built["content_digest"]);

    let dir = data.path().join("indexes").join(&id);
    for (rel, bytes) in tree(&dir) {
        if rel == "manifest.json" || bytes.is_empty() {
            continue;
        }
        let path = dir.join(&rel);
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 0x01;
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        std::fs::write(&path, &flipped).unwrap();
        let run = quire(data.path(), &["--json", "verify", &id]);
        assert_eq!(run.code, 3, "verify should fail after flipping {rel}");
        let report = run.json();
        assert_eq!(report["ok"], false);
        let problems = report["problems"].to_string();
        assert!(
            problems.contains(&rel),
            "verify did not name {rel}: {problems}"
        );
        std::fs::write(&path, &bytes).unwrap();
    }
    assert_eq!(
        quire(data.path(), &["--json", "verify", &id]).ok().json()["ok"],
        true
    );
}

#[test]
fn rebuilding_an_existing_index_is_a_verified_no_op() {
    let data = TempDir::new().unwrap();
    let first = build_json(data.path(), &handbook(), "2");
    let before = tree(data.path());
    let again = build_json(data.path(), &handbook(), "2");
    assert_eq!(again["reused"], true);
    assert_eq!(again["content_digest"], first["content_digest"]);
    assert_eq!(
        tree(data.path()),
        before,
        "a reused build must not touch the data dir"
    );
}

#[test]
fn kill_during_build_leaves_nothing_visible() {
    let data = TempDir::new().unwrap();
    let corpus = data.path().join("big.jsonl");
    let mut text = String::new();
    for i in 0..4000 {
        let words: Vec<String> = (0..200)
            .map(|w| format!("w{}", (i * 7919 + w * 104_729) % 5003))
            .collect();
        text.push_str(&format!(
            "{{\"id\": \"doc-{i}\", \"text\": \"{}\"}}\n",
            words.join(" ")
        ));
    }
    std::fs::write(&corpus, text).unwrap();
    let snap = quire(
        data.path(),
        &["--json", "import", corpus.to_str().unwrap_or_default()],
    )
    .ok()
    .json();
    let snap = snap["snapshot_id"].as_str().unwrap_or_default().to_owned();

    let mut child = common::cmd(data.path(), &["build", &snap])
        .spawn()
        .expect("spawn quire");
    let tmp = data.path().join("tmp");
    let started = std::time::Instant::now();
    while std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(started.elapsed().as_secs() < 60, "build never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().expect("kill -9");
    let status = child.wait().expect("wait");
    assert!(
        !status.success(),
        "build finished before it could be killed"
    );

    let listed = quire(data.path(), &["--json", "indexes"]).ok().json();
    assert_eq!(
        listed,
        serde_json::json!([]),
        "a killed build must not be visible"
    );
    let built = quire(data.path(), &["--json", "build", &snap]).ok().json();
    assert_eq!(built["reused"], false);
    assert_eq!(
        std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(99),
        0,
        "debris left in tmp/"
    );
    assert_eq!(
        quire(
            data.path(),
            &[
                "--json",
                "verify",
                built["index_id"].as_str().unwrap_or_default()
            ]
        )
        .ok()
        .json()["ok"],
        true
    );
}
