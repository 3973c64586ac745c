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

// Format 3 (the BM25 segment without an ACL field); see CHANGELOG.md.
const HANDBOOK_ID: &str = "idx-45c8075e7f25da232fe5d024dacda3393c407cc3c78e1d0278cff3708ccfc8bb";
const HANDBOOK_DIGEST: &str = "f3a546f89756d25e9621dae8b2926901088929a1f7021cff99e2b7d0bbd57802";
const SCIFACT_ID: &str = "idx-aa89fdb44cce3326f3aee6aea7193102dc8b3e4309eb3967bd32b22f0a925013";
const SCIFACT_DIGEST: &str = "7553498efd9dab739d6704274a0d33808349c17913f640ce2308a7d0c9c4f948";
