//! Golden ids: the index id and content digest of the handbook under `specs/default.toml` and
//! of SciFact under `specs/public.toml` are pinned. A change to either must be deliberate: a
//! format version bump, noted in `CHANGELOG.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use quire_core::BuildSpec;
use quire_index::NoProgress;
use quire_store::{Access, CorpusFormat, Store};
use tempfile::TempDir;

use quire_testkit::workspace;

/// Import `corpus` and build it under the spec file `spec`: (index id, content digest).
fn build(corpus: &Path, format: CorpusFormat, spec: &str) -> (String, String) {
    let tmp = TempDir::new().unwrap();
    let store = Store::open(tmp.path(), Access::Write).unwrap();
    let snap = store.import(corpus, Some(format)).unwrap();
    let path = workspace().join(spec);
    let text = std::fs::read_to_string(&path).unwrap();
    let spec = BuildSpec::from_toml(&text, spec).unwrap();
    let built = store.build(&snap.snapshot_id, &spec, &NoProgress).unwrap();
    (
        built.manifest.index_id.to_string(),
        built.manifest.content_digest,
    )
}

#[test]
fn handbook_under_the_default_spec_keeps_its_ids() {
    let got = build(
        &workspace().join("corpora/handbook"),
        CorpusFormat::Dir,
        "specs/default.toml",
    );
    assert_eq!(got, (HANDBOOK_ID.to_owned(), HANDBOOK_DIGEST.to_owned()));
}

#[test]
fn scifact_under_the_public_spec_keeps_its_ids() {
    let Some(dir) = quire_testkit::scifact() else {
        return;
    };
    let got = build(
        &dir.join("corpus.jsonl"),
        CorpusFormat::Beir,
        "specs/public.toml",
    );
    assert_eq!(got, (SCIFACT_ID.to_owned(), SCIFACT_DIGEST.to_owned()));
}

// Computed on main at 4743450 (format version of that commit).
const HANDBOOK_ID: &str = "idx-51c6f0b6ed8307493b1953e49577b47875dfa6c237121342b0576b5a5deb52f0";
const HANDBOOK_DIGEST: &str = "923d86757e4dbdf304855bbffddc4092082b1f38f652844dc699b9ea3eca67a6";
const SCIFACT_ID: &str = "idx-117f21e53cc91aba3e1abf335e00d9f260665278c6ce3fe56d983468b1ee8c38";
const SCIFACT_DIGEST: &str = "6d69c99bc4cf7a03ecf5f53d84f174fd7a4daae331c75d0c58cfa57ddc10084f";
