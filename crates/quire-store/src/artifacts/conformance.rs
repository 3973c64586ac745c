//! The suite every [`ArtifactStore`] backend must pass: call [`run`] with a factory of fresh,
//! empty stores and a scratch directory (the directory store's runs in this crate's tests, S3's
//! in quire-store-s3's against SeaweedFS). It goes through [`Store`], as builders and replicas
//! do: publish, fetch into a fresh data dir, query, and refuse what was tampered with; and GC
//! on the store (ages by the store's clock, abandoned uploads, unused embedding packs, the
//! snapshot tombstone protocol against a racing build), interleaved with [`fake::Fake`].

#![allow(clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use quire_core::{BuildSpec, IndexId, Manifest, Reader};
use quire_index::{MANIFEST_FILE, Mode, NoProgress, Query};

use super::{ArtifactStore, Created, Key, transfer};
use crate::{Access, RetrievalService, Store};

pub mod fake;
mod gc;

/// Run every check against stores made by `fresh`, with data dirs under `scratch`; panics
/// naming the first that fails.
pub fn run(fresh: &dyn Fn() -> Arc<dyn ArtifactStore>, scratch: &Path) {
    objects_round_trip_and_markers_are_create_only(&*fresh());
    an_index_round_trips_through_the_store(fresh(), &scratch.join("round-trip"));
    tampering_is_refused_naming_the_object(fresh(), &scratch.join("tampered"));
    gc::listings_carry_the_stores_times(&*fresh());
    gc::freshness_is_judged_by_the_stores_clock(fresh(), &scratch.join("fresh"));
    gc::abandoned_uploads_go_once_old(fresh(), &scratch.join("abandoned"));
    gc::unused_embedding_packs_go(fresh(), &scratch.join("packs"));
    gc::a_build_racing_a_snapshots_deletion_keeps_it(fresh(), &scratch.join("race"));
    gc::a_stalled_upload_gets_its_files_back(fresh(), &scratch.join("stalled"));
    gc::a_stopped_gcs_tombstones_are_cleared(fresh(), &scratch.join("stopped"));
}

/// A data dir at `dir` sharing artifacts through `store`.
pub fn data_dir(dir: &Path, store: &Arc<dyn ArtifactStore>) -> Store {
    Store::open(dir, Access::Write)
        .expect("data dir")
        .with_artifacts(store.clone())
}

/// Import a small corpus (12 documents, half readable by everyone) into `data` and build it
/// with the default spec, publishing both: the index's manifest.
pub fn build_small_index(data: &Store, scratch: &Path) -> Manifest {
    std::fs::create_dir_all(scratch).expect("scratch");
    let corpus = scratch.join("corpus.jsonl");
    let lines: Vec<String> = (0..12)
        .map(|i| {
            let acl = if i % 2 == 0 { r#"["*"]"# } else { r#"["group:eng"]"# };
            format!(
                r#"{{"id":"doc-{i}","text":"document {i} talks about topic {} and parental leave policy number {i}","acl":{acl}}}"#,
                i % 3
            )
        })
        .collect();
    std::fs::write(&corpus, lines.join("\n") + "\n").expect("corpus");
    let snapshot = data
        .import_as(&corpus, None, "conformance")
        .expect("import");
    data.build_as(
        &snapshot.snapshot_id,
        &BuildSpec::default(),
        &NoProgress,
        "conformance",
    )
    .expect("build")
    .manifest
}

fn objects_round_trip_and_markers_are_create_only(store: &dyn ArtifactStore) {
    let key = Key::new("probe/a.bin").expect("key");
    let body = vec![7u8; 3 << 20];
    store
        .put(&key, &mut &body[..], body.len() as u64)
        .expect("put");
    let mut back = Vec::new();
    store
        .get(&key)
        .expect("get")
        .expect("the object is there")
        .read_to_end(&mut back)
        .expect("read");
    assert_eq!(back, body, "{}: a put object reads back", store.location());
    let marker = Key::new("probe/marker").expect("key");
    assert_eq!(
        store.put_new(&marker, b"first").expect("put_new"),
        Created::Created
    );
    assert_eq!(
        store.put_new(&marker, b"second").expect("put_new"),
        Created::Exists
    );
    let mut text = String::new();
    store
        .get(&marker)
        .expect("get")
        .expect("marker")
        .read_to_string(&mut text)
        .expect("read");
    assert_eq!(text, "first", "a create-only put never replaces an object");
    let probe = Key::new("probe").expect("key");
    assert_eq!(
        store.children(&probe).expect("children"),
        ["a.bin", "marker"]
    );
    assert_eq!(store.list(&probe).expect("list"), [key.clone(), marker]);
    store.delete(&key).expect("delete");
    store
        .delete(&key)
        .expect("deleting an absent object is fine");
    assert!(
        store.get(&key).expect("get").is_none(),
        "deleted objects are gone"
    );
    assert!(
        store
            .get(&Key::new("never/was").expect("key"))
            .expect("get")
            .is_none()
    );
}

fn reader() -> Reader {
    Reader::new(Some("ana"), ["eng"]).expect("reader")
}

fn hits(data: &Store, id: &IndexId) -> Vec<(String, u64)> {
    let query = Query {
        text: "parental leave topic 1".into(),
        reader: reader(),
        k: 5,
        mode: Mode::Hybrid,
        fusion: None,
        candidates: None,
    };
    let response = data.retrieve(id.as_str(), &query).expect("retrieve");
    response
        .hits
        .iter()
        .map(|h| (h.chunk_id.clone(), h.score.to_bits()))
        .collect()
}

fn an_index_round_trips_through_the_store(store: Arc<dyn ArtifactStore>, scratch: &Path) {
    let builder = data_dir(&scratch.join("builder"), &store);
    let built = build_small_index(&builder, &scratch.join("corpus"));
    let id = &built.index_id;
    assert_eq!(
        transfer::index_builds(&*store, id).expect("builds"),
        std::slice::from_ref(&built.content_digest),
        "the build is committed under its digest"
    );
    let (_, again) = transfer::upload_index(&*store, &builder.index_dir(id)).expect("upload");
    assert_eq!(
        again,
        Created::Exists,
        "a second upload of one build commits nothing"
    );

    let replica = data_dir(&scratch.join("replica"), &store);
    let prefix = &id.as_str()[..IndexId::PREFIX.len() + 12];
    assert_eq!(&replica.resolve_index(prefix).expect("resolve"), id);
    let fetched = replica.manifest(id).expect("fetched on first use");
    assert_eq!(fetched.content_digest, built.content_digest, "same digest");
    assert!(
        replica.verify(id).expect("verify").ok,
        "the fetched index verifies"
    );
    assert_eq!(
        hits(&replica, id),
        hits(&builder, id),
        "it answers as the builder's"
    );
    assert!(
        replica.snapshot(&built.snapshot_id).is_err(),
        "not fetched with the index"
    );
    replica
        .fetch_snapshot(&built.snapshot_id)
        .expect("snapshot");
    let rebuilt = replica
        .rebuild_check(id, &NoProgress)
        .expect("rebuild-check on the fetched snapshot");
    assert!(
        rebuilt.ok,
        "the fetched snapshot rebuilds the fetched index"
    );
}

fn tampering_is_refused_naming_the_object(store: Arc<dyn ArtifactStore>, scratch: &Path) {
    let builder = data_dir(&scratch.join("builder"), &store);
    let built = build_small_index(&builder, &scratch.join("corpus"));
    let (id, digest) = (&built.index_id, &built.content_digest);
    let base = Key::index_build(id, digest).expect("key");
    let refused = |what: &str, name: &str, object: &str| {
        let dir = scratch.join(name);
        let err = data_dir(&dir, &store)
            .open_index(id)
            .expect_err(what)
            .to_string();
        assert!(
            err.contains(store.location()) && err.contains(object),
            "{what}: the refusal names the store and {object}: {err}"
        );
        for sub in ["indexes", "tmp"] {
            let left = std::fs::read_dir(dir.join(sub)).expect("data dir").count();
            assert_eq!(left, 0, "{what}: nothing partial is left in {sub}/");
        }
        err
    };
    // A file whose bytes changed (same length).
    let file = built
        .files
        .iter()
        .find(|f| f.path == "chunks.jsonl")
        .expect("chunks");
    let key = base.join(&file.path).expect("key");
    let original = read_all(&*store, &key);
    let mut tampered = original.clone();
    tampered[0] ^= 1;
    store
        .put(&key, &mut &tampered[..], tampered.len() as u64)
        .expect("tamper");
    let err = refused("a changed file", "changed", "chunks.jsonl");
    assert!(err.contains("blake3"), "{err}");
    // A missing file.
    store.delete(&key).expect("delete");
    let err = refused("a missing file", "missing", "chunks.jsonl");
    assert!(err.contains("missing"), "{err}");
    store
        .put(&key, &mut &original[..], original.len() as u64)
        .expect("restore");
    // A manifest whose file list was edited to match other bytes: its digest no longer holds.
    let marker = base.join(MANIFEST_FILE).expect("key");
    let mut manifest = built.clone();
    manifest.files[0].blake3 = "0".repeat(64);
    let edited = serde_json::to_vec(&manifest).expect("json");
    store
        .put(&marker, &mut &edited[..], edited.len() as u64)
        .expect("tamper");
    refused("an edited manifest", "manifest", MANIFEST_FILE);
    // Restored, the same build fetches.
    let good = std::fs::read(builder.index_dir(id).join(MANIFEST_FILE)).expect("manifest");
    store
        .put(&marker, &mut &good[..], good.len() as u64)
        .expect("restore");
    let fresh = data_dir(&scratch.join("restored"), &store);
    assert_eq!(&fresh.manifest(id).expect("fetch").content_digest, digest);
}

fn read_all(store: &dyn ArtifactStore, key: &Key) -> Vec<u8> {
    let mut bytes = Vec::new();
    store
        .get(key)
        .expect("get")
        .expect("object")
        .read_to_end(&mut bytes)
        .expect("read");
    bytes
}

/// Copy the published index `from` to `to` with one byte of `vectors.f32` changed and the
/// manifest's hashes and digest recomputed: the same id with other bytes, as another kernel
/// path or quire version would build it.
pub fn other_bytes(from: &Path, to: &Path) -> String {
    copy_tree(from, to);
    let vectors = to.join("vectors.f32");
    let mut bytes = std::fs::read(&vectors).expect("other bytes");
    bytes[0] ^= 1;
    std::fs::write(&vectors, bytes).expect("other bytes");
    let mut manifest = quire_index::read_manifest(to).expect("other bytes");
    manifest.files = quire_index::artifact_files(to).expect("other bytes");
    manifest.content_digest = quire_core::manifest::content_digest(&manifest.files);
    quire_index::write_manifest(to, &manifest).expect("other bytes");
    manifest.content_digest
}

pub(super) fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("other bytes");
    for entry in std::fs::read_dir(from).expect("other bytes") {
        let path = entry.expect("other bytes").path();
        let target = to.join(path.file_name().expect("other bytes"));
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::write(&target, std::fs::read(&path).expect("other bytes"))
                .expect("other bytes");
        }
    }
}
