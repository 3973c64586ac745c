//! The real embedding model through the `quire` binary: the shipped specs, thread-count and
//! cache independence of MiniLM builds, digest pinning. Tests that need the model skip with a
//! message when `models/all-minilm-l6-v2` is absent (`scripts/fetch-model` fetches it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};

use common::{handbook, tree, workspace};
use quire_core::BuildSpec;
use tempfile::TempDir;

fn models_dir() -> PathBuf {
    workspace().join("models")
}

fn minilm() -> Option<PathBuf> {
    quire_testkit::minilm()
}

fn spec_path(name: &str) -> PathBuf {
    workspace().join("specs").join(name)
}

/// The handbook's HR section with its ACL file: 9 documents, enough chunks to span several
/// embedding batches while keeping three real-model builds cheap.
fn hr_corpus(dir: &Path) -> PathBuf {
    let corpus = dir.join("hr-handbook");
    copy_dir(&handbook().join("hr"), &corpus.join("hr"));
    std::fs::copy(
        handbook().join("quire-acl.toml"),
        corpus.join("quire-acl.toml"),
    )
    .unwrap();
    corpus
}

fn build_corpus(data: &Path, corpus: &Path, spec: &Path, threads: &str) -> common::Run {
    let out = common::cmd(
        data,
        &[
            "--json",
            "--models",
            models_dir().to_str().unwrap(),
            "build",
            corpus.to_str().unwrap(),
            "--spec",
            spec.to_str().unwrap(),
        ],
    )
    .env("RAYON_NUM_THREADS", threads)
    .output()
    .expect("spawn quire");
    common::Run::from(out)
}

fn files_without_build_stats(data: &Path, id: &str) -> Vec<(String, Vec<u8>)> {
    tree(&data.join("indexes").join(id))
        .into_iter()
        .map(|(path, bytes)| {
            if path == "manifest.json" {
                let mut m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                m["build"] = serde_json::Value::Null;
                (path, m.to_string().into_bytes())
            } else {
                (path, bytes)
            }
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn shipped_specs_parse_and_differ_only_in_embedding_and_fusion() {
    let default = std::fs::read_to_string(spec_path("default.toml")).unwrap();
    let minilm = std::fs::read_to_string(spec_path("minilm.toml")).unwrap();
    let default = BuildSpec::from_toml(&default, "specs/default.toml").unwrap();
    let minilm = BuildSpec::from_toml(&minilm, "specs/minilm.toml").unwrap();
    assert_eq!(default, BuildSpec::default());
    assert_eq!(minilm.embedding.model, "all-minilm-l6-v2");
    assert!(minilm.embedding.digest.is_some());
    assert!(minilm.embedding.include_title);
    assert_eq!(
        minilm.fusion.method,
        quire_core::spec::FusionMethod::Weighted
    );
    assert_eq!(
        BuildSpec {
            embedding: default.embedding.clone(),
            fusion: default.fusion.clone(),
            ..minilm.clone()
        },
        default
    );
    // The public variants add `default_acl = ["*"]` and nothing else.
    for (public, base) in [("public.toml", &default), ("minilm-public.toml", &minilm)] {
        let text = std::fs::read_to_string(spec_path(public)).unwrap();
        let spec = BuildSpec::from_toml(&text, public).unwrap();
        let acl = spec.default_acl.clone().expect("a default ACL");
        assert_eq!(
            serde_json::to_value(&acl).unwrap(),
            serde_json::json!(["*"])
        );
        assert_eq!(
            BuildSpec {
                default_acl: None,
                ..spec
            },
            *base,
            "{public}"
        );
    }
}

/// Cold builds at 1 and 2 threads and a warm (all cached) build are byte-identical, the cache
/// counts are reported, and a query is embedded by the same model.
#[test]
fn minilm_builds_are_identical_across_threads_and_cold_or_warm_cache() {
    let Some(_) = minilm() else { return };
    let spec = spec_path("minilm.toml");
    let (a, b, warm, src) = (
        TempDir::new().unwrap(),
        TempDir::new().unwrap(),
        TempDir::new().unwrap(),
        TempDir::new().unwrap(),
    );
    let corpus = hr_corpus(src.path());
    let ja = build_corpus(a.path(), &corpus, &spec, "1").ok().json();
    let jb = build_corpus(b.path(), &corpus, &spec, "2").ok().json();
    let chunks = ja["counts"]["chunks"].as_u64().unwrap();
    assert!(chunks > 20, "{ja}");
    assert_eq!(ja["embed_cache"]["misses"].as_u64(), Some(chunks), "{ja}");
    assert_eq!(ja["embed_cache"]["hits"].as_u64(), Some(0), "{ja}");
    copy_dir(
        &a.path().join("embed-cache"),
        &warm.path().join("embed-cache"),
    );
    let jw = build_corpus(warm.path(), &corpus, &spec, "2").ok().json();
    assert_eq!(jw["embed_cache"]["hits"].as_u64(), Some(chunks), "{jw}");
    assert_eq!(jw["embed_cache"]["misses"].as_u64(), Some(0), "{jw}");
    for j in [&jb, &jw] {
        assert_eq!(ja["index_id"], j["index_id"]);
        assert_eq!(ja["content_digest"], j["content_digest"]);
    }
    let id = ja["index_id"].as_str().unwrap();
    let fa = files_without_build_stats(a.path(), id);
    assert_eq!(fa, files_without_build_stats(b.path(), id));
    assert_eq!(fa, files_without_build_stats(warm.path(), id));

    let query = common::cmd(
        warm.path(),
        &[
            "--json",
            "--models",
            models_dir().to_str().unwrap(),
            "query",
            id,
            "how many weeks of leave do new parents get",
            "--group",
            "all-staff",
            "--mode",
            "vector",
            "-k",
            "3",
        ],
    )
    .output()
    .expect("spawn quire");
    let response = common::Run::from(query).ok().json();
    assert_eq!(response["lineage"]["embedding_model"], "all-minilm-l6-v2");
    let top = response["hits"][0]["doc_id"].as_str().unwrap_or_default();
    assert!(top.contains("leave"), "top hit {top}: {response}");
}

/// A spec pinning another digest is refused, naming both digests; so is an index whose model
/// directory is missing.
#[test]
fn a_different_model_digest_or_a_missing_model_is_refused() {
    let Some(_) = minilm() else { return };
    let dir = TempDir::new().unwrap();
    let text = std::fs::read_to_string(spec_path("minilm.toml")).unwrap();
    let spec = BuildSpec::from_toml(&text, "minilm.toml").unwrap();
    let real = spec.embedding.digest.clone().unwrap();
    let wrong = "0".repeat(64);
    let wrong_spec = dir.path().join("wrong.toml");
    std::fs::write(&wrong_spec, text.replace(&real, &wrong)).unwrap();
    // A two-document corpus keeps this test cheap.
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(corpus.join("leave.md"), "Parental leave is twenty weeks.").unwrap();
    std::fs::write(corpus.join("sev.md"), "SEV1 is a full outage.").unwrap();
    let run = build_corpus(&dir.path().join("data"), &corpus, &wrong_spec, "2");
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains(&real) && run.stderr.contains(&wrong),
        "{}",
        run.stderr
    );

    let data = dir.path().join("data2");
    let built = build_corpus(&data, &corpus, &spec_path("minilm.toml"), "2")
        .ok()
        .json();
    let id = built["index_id"].as_str().unwrap();
    let empty_models = dir.path().join("no-models");
    let run = common::Run::from(
        common::cmd(
            &data,
            &[
                "--models",
                empty_models.to_str().unwrap(),
                "query",
                id,
                "leave",
                "--group",
                "all-staff",
            ],
        )
        .output()
        .expect("spawn quire"),
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("`all-minilm-l6-v2` is not available"),
        "{}",
        run.stderr
    );
}
