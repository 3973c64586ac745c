//! The artifact-store conformance suite on the directory store (`file:///...`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use quire_core::BuildSpec;
use quire_index::NoProgress;
use quire_store::artifacts::conformance::{build_small_index, other_bytes};
use quire_store::artifacts::transfer;
use quire_store::{Access, ArtifactStore, DirStore, Key, Store};

#[test]
fn the_directory_store_passes_the_artifact_store_conformance_suite() {
    let tmp = tempfile::TempDir::new().unwrap();
    let stores = tmp.path().join("stores");
    let next = std::sync::atomic::AtomicU32::new(0);
    let fresh = || -> Arc<dyn ArtifactStore> {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Arc::new(DirStore::open(&stores.join(n.to_string())).unwrap())
    };
    quire_store::artifacts::conformance::run(&fresh, &tmp.path().join("data"));
}

#[test]
fn a_build_that_loses_the_registry_race_removes_its_upload() {
    let tmp = tempfile::TempDir::new().unwrap();
    let shared: Arc<dyn ArtifactStore> = Arc::new(DirStore::open(&tmp.path().join("s")).unwrap());
    let registry = tmp.path().join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    // Two builders, one after the other, on one registry.
    let open = |name: &str| {
        let registry = quire_store::open_redb_registry(&registry, Access::Write).unwrap();
        Store::open_with_registry(tmp.path().join(name), Access::Write, registry)
            .unwrap()
            .with_artifacts(shared.clone())
    };
    let first = open("first");
    let won = build_small_index(&first, &tmp.path().join("corpus"));
    let first_dir = first.index_dir(&won.index_id);
    drop(first);

    let second = open("second");
    let corpus = tmp.path().join("corpus/corpus.jsonl");
    let snapshot = second.import(&corpus, None).unwrap().snapshot_id;
    let lost = other_bytes(&first_dir, &second.index_dir(&won.index_id));
    assert_ne!(lost, won.content_digest);
    let built = second
        .build_as(&snapshot, &BuildSpec::default(), &NoProgress, "second")
        .unwrap();
    assert_eq!(
        built.manifest.content_digest, won.content_digest,
        "the second builder reports the recorded build"
    );
    assert!(
        !second.index_dir(&won.index_id).exists(),
        "the second builder's other bytes left its data dir"
    );

    let id = &won.index_id;
    let builds = transfer::index_builds(&*shared, id).unwrap();
    assert_eq!(
        builds,
        std::slice::from_ref(&won.content_digest),
        "only the winner's build is in the store"
    );
    let lost_objects = shared.list(&Key::index_build(id, &lost).unwrap()).unwrap();
    assert!(
        lost_objects.is_empty(),
        "the loser's objects are gone: {lost_objects:?}"
    );
    let events = second.audit_events().unwrap();
    let recorded = events.iter().filter(|e| e.action == "index.build").count();
    assert_eq!(recorded, 1, "one index.build event: {events:?}");
    let served = second.open_index(id).unwrap();
    assert_eq!(
        served.manifest().content_digest,
        won.content_digest,
        "the second builder serves the recorded build, fetched"
    );
}

#[test]
fn a_build_whose_snapshot_was_collected_meanwhile_puts_it_back() {
    let tmp = tempfile::TempDir::new().unwrap();
    let shared: Arc<dyn ArtifactStore> = Arc::new(DirStore::open(&tmp.path().join("s")).unwrap());
    let builder = Store::open(tmp.path().join("data"), Access::Write)
        .unwrap()
        .with_artifacts(shared.clone());
    let corpus = tmp.path().join("corpus.jsonl");
    std::fs::write(
        &corpus,
        "{\"id\":\"a\",\"text\":\"alpha beta gamma\",\"acl\":[\"*\"]}\n\
         {\"id\":\"b\",\"text\":\"delta epsilon\",\"acl\":[\"*\"]}\n",
    )
    .unwrap();
    let snapshot = builder.import(&corpus, None).unwrap().snapshot_id;
    assert_eq!(
        transfer::snapshot_ids(&*shared).unwrap(),
        vec![snapshot.clone()]
    );
    // GC on another machine deleted the snapshot while this build ran (no index in the store
    // was built from it yet).
    transfer::remove_snapshot(&*shared, &snapshot).unwrap();
    let objects = |shared: &dyn ArtifactStore| shared.list(&Key::snapshot(&snapshot)).unwrap();
    assert!(
        objects(&*shared).is_empty(),
        "the snapshot's objects are gone"
    );
    assert!(matches!(
        transfer::fetch_snapshot(&*shared, &snapshot, &tmp.path().join("gone")),
        Ok(None)
    ));

    let built = builder
        .build_as(&snapshot, &BuildSpec::default(), &NoProgress, "builder")
        .unwrap();
    assert!(
        !objects(&*shared).is_empty(),
        "the snapshot the published index was built from is in the store again"
    );
    let fetched = transfer::fetch_snapshot(&*shared, &snapshot, &tmp.path().join("fetched"));
    assert!(
        matches!(fetched, Ok(Some(_))),
        "the snapshot fetches whole (its hash checked): {fetched:?}"
    );
    assert_eq!(built.manifest.snapshot_id, snapshot);
}
