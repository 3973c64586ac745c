//! GC against the shared store, in the conformance suite so it runs on every backend: ages
//! judged by the store's clock, abandoned uploads and unused embedding packs collected, and a
//! build racing a snapshot's deletion keeping its snapshot.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use quire_core::{BuildSpec, IndexId, Manifest};
use quire_index::NoProgress;

use super::fake::Fake;
use super::{build_small_index, data_dir};
use crate::artifacts::{ArtifactStore, Key, tombstone, transfer};
use crate::{Access, DeletedPacks, DeletedUpload, GcReport, Store, StoreOptions};

const TWO_HOURS: Duration = Duration::from_secs(2 * 3600);

/// A data dir at `dir` on `store` whose GC deletes at once (no grace) and keeps what was
/// written less than an hour ago.
fn gc_machine(dir: &Path, store: Arc<dyn ArtifactStore>, fresh: Duration) -> Store {
    data_dir(dir, &store).with_options(StoreOptions {
        gc_grace: Duration::ZERO,
        gc_fresh: fresh,
        ..StoreOptions::default()
    })
}

/// Run GC (window an hour) from a data dir at `dir` on `store` as seen through a [`Fake`]
/// that lists the objects under `prefix` as `by` older than they are: the data dir and report.
fn gc_aged(
    store: &Arc<dyn ArtifactStore>,
    dir: &Path,
    prefix: &Key,
    by: Duration,
) -> (Store, GcReport) {
    let gc = aged_machine(store, dir, &[prefix], by);
    let report = gc.gc(false, "gc", "test").expect("gc");
    (gc, report)
}

/// A dry GC (window an hour) from a data dir at `dir` on `store`, the objects under each of
/// `prefixes` listed as two hours older than they are: its report.
fn gc_aged_dry(store: &Arc<dyn ArtifactStore>, dir: &Path, prefixes: &[&Key]) -> GcReport {
    let gc = aged_machine(store, dir, prefixes, TWO_HOURS);
    let report = gc.gc(true, "gc", "test").expect("gc");
    assert!(report.dry_run, "{report:?}");
    // Nothing marked, deleted or audited.
    for action in [
        "index.delete.marked",
        "index.delete",
        "index.upload.delete",
        "snapshot.delete",
        "embed_cache.delete",
    ] {
        assert_eq!(
            events(&gc, action),
            Vec::<String>::new(),
            "a dry run: {action}"
        );
    }
    assert!(
        gc.registry.deleting().expect("marks").is_empty(),
        "a dry run marked"
    );
    report
}

/// A data dir at `dir` on `store` as seen through a [`Fake`] that lists the objects under
/// each of `prefixes` as `by` older than they are, whose GC keeps what is younger than an hour.
fn aged_machine(
    store: &Arc<dyn ArtifactStore>,
    dir: &Path,
    prefixes: &[&Key],
    by: Duration,
) -> Store {
    let fake = Arc::new(Fake::new(store.clone()));
    for prefix in prefixes {
        fake.age(prefix, by);
    }
    gc_machine(dir, fake, Duration::from_secs(3600))
}

fn events(data: &Store, action: &str) -> Vec<String> {
    let events = data.audit_events().expect("audit");
    events
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| e.target)
        .collect()
}

/// The store's clock: `now` and an object's last-modified time agree with each other (within
/// a second, S3's `Last-Modified` having whole seconds), whatever this machine's clock says.
pub(super) fn listings_carry_the_stores_times(store: &dyn ArtifactStore) {
    let before = store.now().expect("now");
    let key = Key::new("timed/object").expect("key");
    store.put(&key, &mut &b"x"[..], 1).expect("put");
    let after = store.now().expect("now");
    let listed = store
        .list_objects(&Key::new("timed").expect("key"))
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let second = Duration::from_secs(1);
    let modified = listed[0].modified;
    assert!(
        modified + second >= before && modified <= after + second,
        "{}: written between {before:?} and {after:?}, listed as {modified:?}",
        store.location()
    );
    assert!(
        store
            .list(&Key::new("clock").expect("key"))
            .expect("list")
            .is_empty(),
        "the clock's probes are deleted"
    );
}

/// A builder whose clock is two hours behind publishes an index (its `built_at` says two
/// hours ago): GC keeps it as fresh, since the store wrote it just now; once the store's
/// objects of it are two hours old, it goes.
pub(super) fn freshness_is_judged_by_the_stores_clock(store: Arc<dyn ArtifactStore>, s: &Path) {
    let local = Store::open(s.join("builder"), Access::Write).expect("data dir");
    let built = build_small_index(&local, &s.join("corpus"));
    let id = &built.index_id;
    let skewed = s.join("skewed");
    super::copy_tree(&local.index_dir(id), &skewed);
    let mut manifest = quire_index::read_manifest(&skewed).expect("manifest");
    let behind = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
    manifest.build.built_at = behind.to_string();
    quire_index::write_manifest(&skewed, &manifest).expect("manifest");
    transfer::upload_index(&*store, &skewed).expect("upload");

    let gc = gc_machine(&s.join("gc"), store.clone(), Duration::from_secs(3600));
    let report = gc.gc(false, "gc", "test").expect("gc");
    assert!(report.deleted_indexes.is_empty(), "{report:?}");
    let why = report.kept[id].join("; ");
    assert!(why.contains("by the store's clock"), "{why}");
    assert_eq!(
        transfer::index_builds(&*store, id).expect("builds").len(),
        1
    );

    let (_, report) = gc_aged(&store, &s.join("later"), &Key::index(id), TWO_HOURS);
    assert_eq!(report.deleted_indexes, vec![id.clone()], "{report:?}");
    assert!(
        transfer::index_builds(&*store, id)
            .expect("builds")
            .is_empty()
    );
}

/// An upload that never committed stays while it is younger than the window by the store's
/// clock, and goes (audited, and listed in the report) once its newest object is older; a dry
/// run lists it and leaves it.
pub(super) fn abandoned_uploads_go_once_old(store: Arc<dyn ArtifactStore>, s: &Path) {
    let id: IndexId = format!("idx-{}", "7".repeat(64)).parse().expect("id");
    let digest = "8".repeat(64);
    let base = Key::index_build(&id, &digest).expect("key");
    for file in ["vectors.f32", "chunks.jsonl"] {
        let key = base.join(file).expect("key");
        store
            .put(&key, &mut &b"half an upload"[..], 14)
            .expect("put");
    }
    let gc = gc_machine(&s.join("gc"), store.clone(), Duration::from_secs(3600));
    let report = gc.gc(false, "gc", "test").expect("gc");
    let why = report.kept[&id].join("; ");
    assert!(why.contains("upload in progress"), "{why}");
    assert!(report.deleted_uploads.is_empty(), "{report:?}");
    assert_eq!(store.list(&base).expect("list").len(), 2, "young: kept");

    let abandoned = vec![DeletedUpload {
        index_id: id.clone(),
        content_digest: digest,
        objects: 2,
    }];
    let dry = gc_aged_dry(&store, &s.join("dry"), &[&Key::index(&id)]);
    assert_eq!(dry.deleted_uploads, abandoned, "{dry:?}");
    assert!(!dry.kept.contains_key(&id), "gone with its upload: {dry:?}");
    assert_eq!(store.list(&base).expect("list").len(), 2, "dry: kept");

    let (later, report) = gc_aged(&store, &s.join("later"), &Key::index(&id), TWO_HOURS);
    assert!(
        store.list(&Key::index(&id)).expect("list").is_empty(),
        "{}: the abandoned upload is gone",
        store.location()
    );
    assert_eq!(report.deleted_uploads, abandoned, "{report:?}");
    assert!(!report.kept.contains_key(&id), "{report:?}");
    assert_eq!(events(&later, "index.upload.delete"), [id.to_string()]);
}

/// Packs of a model no index in the store uses go once older than the window; packs of the
/// model a kept index uses stay.
pub(super) fn unused_embedding_packs_go(store: Arc<dyn ArtifactStore>, s: &Path) {
    let builder = data_dir(&s.join("builder"), &store);
    let built = build_small_index(&builder, &s.join("corpus"));
    let used =
        quire_embed::cache_namespace(&built.embedding.digest, built.spec.embedding.precision);
    let unused = "0".repeat(64);
    let pack = |namespace: &str| {
        Key::new(&format!("embed-cache/{namespace}/{}.pack", "1".repeat(64))).expect("key")
    };
    for namespace in [&used, &unused] {
        store.put_new(&pack(namespace), b"pack").expect("pack");
    }
    let packs = Key::new("embed-cache").expect("key");
    // The build shared its own pack of the used model too.
    let listed = |namespace: &String| DeletedPacks {
        namespace: namespace.clone(),
        packs: store
            .list(&packs.join(namespace).expect("key"))
            .expect("list")
            .len() as u64,
    };
    let (used_packs, unused_packs) = (listed(&used), listed(&unused));
    assert_eq!(unused_packs.packs, 1);
    let sorted = |mut p: Vec<DeletedPacks>| {
        p.sort_by(|a, b| a.namespace.cmp(&b.namespace));
        p
    };
    // Dry, with the index old too: it would go, and then its model's packs with it.
    let index = Key::index(&built.index_id);
    let dry = gc_aged_dry(&store, &s.join("dry-old"), &[&packs, &index]);
    assert_eq!(
        dry.deleted_indexes,
        std::slice::from_ref(&built.index_id),
        "{dry:?}"
    );
    assert_eq!(
        sorted(dry.deleted_packs),
        sorted(vec![used_packs, unused_packs.clone()])
    );
    // The index is an hour old at most: fresh, so kept, and its model's packs with it.
    let dry = gc_aged_dry(&store, &s.join("dry"), &[&packs]);
    assert_eq!(
        dry.deleted_packs,
        std::slice::from_ref(&unused_packs),
        "{dry:?}"
    );
    assert!(
        store.get(&pack(&unused)).expect("get").is_some(),
        "dry: kept"
    );

    let (gc, report) = gc_aged(&store, &s.join("gc"), &packs, TWO_HOURS);
    assert!(report.kept.contains_key(&built.index_id), "{report:?}");
    assert_eq!(report.deleted_packs, [unused_packs], "{report:?}");
    assert!(
        store.get(&pack(&used)).expect("get").is_some(),
        "in use: kept"
    );
    assert!(
        store.get(&pack(&unused)).expect("get").is_none(),
        "unused and old: gone"
    );
    assert_eq!(events(&gc, "embed_cache.delete"), [unused]);
}

/// GC deletes a snapshot (its only index went) while a builder on another machine publishes
/// a new index built from it, the builder having started after GC looked for indices built
/// from it and before GC's first delete. The builder puts the snapshot back before
/// committing, so the store ends with the index and its snapshot.
pub(super) fn a_build_racing_a_snapshots_deletion_keeps_it(
    store: Arc<dyn ArtifactStore>,
    s: &Path,
) {
    let fake = Arc::new(Fake::new(store.clone()));
    let gc = gc_machine(&s.join("gc"), fake.clone(), Duration::ZERO);
    let first = build_small_index(&gc, &s.join("corpus"));
    let snapshot = first.snapshot_id.clone();

    // Another machine holds the snapshot and has built another index from it, not yet
    // published.
    let other = s.join("other");
    let manifest: Manifest = {
        let local = Store::open(&other, Access::Write).expect("data dir");
        let corpus = s.join("corpus/corpus.jsonl");
        assert_eq!(
            local.import(&corpus, None).expect("import").snapshot_id,
            snapshot
        );
        let mut spec = BuildSpec::default();
        spec.embedding.dim = Some(64);
        local
            .build(&snapshot, &spec, &NoProgress)
            .expect("build")
            .manifest
    };
    assert_ne!(manifest.index_id, first.index_id);
    let watched = Arc::new(Fake::new(store.clone()));
    let (tx, rx) = mpsc::channel();
    watched.on_found(tombstone::key(&snapshot), tx.clone());
    let builder = data_dir(&other, &(watched as Arc<dyn ArtifactStore>));

    // Before GC deletes the snapshot's first object, the builder publishes; GC goes on once
    // the builder is done or has found GC's tombstone.
    let publishing = Arc::new(std::sync::Mutex::new(None));
    let handle = publishing.clone();
    let marker = Key::snapshot(&snapshot).join("snapshot.json").expect("key");
    let to_publish = manifest.clone();
    fake.before_delete(
        marker,
        Box::new(move || {
            let thread = std::thread::spawn(move || {
                let published = builder
                    .publish_index(&to_publish)
                    .map_err(|e| e.to_string());
                let _ = tx.send("published");
                published
            });
            *handle.lock().expect("lock") = Some(thread);
            let _ = rx.recv_timeout(Duration::from_secs(60));
        }),
    );
    let report = gc.gc(false, "gc", "test").expect("gc");
    assert_eq!(
        report.deleted_indexes,
        vec![first.index_id.clone()],
        "{report:?}"
    );
    assert_eq!(
        report.deleted_snapshots,
        vec![snapshot.clone()],
        "{report:?}"
    );
    let thread = publishing
        .lock()
        .expect("lock")
        .take()
        .expect("the hook ran");
    let published = thread.join().expect("builder");
    assert!(published.is_ok(), "{published:?}");

    assert_eq!(
        transfer::index_builds(&*store, &manifest.index_id).expect("builds"),
        std::slice::from_ref(&manifest.content_digest),
        "the builder's index is committed"
    );
    let fetched = transfer::fetch_snapshot(&*store, &snapshot, &s.join("fetched"));
    assert!(
        matches!(fetched, Ok(Some(_))),
        "{}: the committed index's snapshot is in the store, whole: {fetched:?}",
        store.location()
    );
    assert!(
        store
            .get(&tombstone::key(&snapshot))
            .expect("get")
            .is_none(),
        "no tombstone left"
    );
}

/// A builder that stalled between its files and its commit marker for so long that GC took
/// its upload for abandoned: after committing, it uploads the missing files again, and the
/// build fetches whole.
pub(super) fn a_stalled_upload_gets_its_files_back(store: Arc<dyn ArtifactStore>, s: &Path) {
    let local = Store::open(s.join("builder"), Access::Write).expect("data dir");
    let built = build_small_index(&local, &s.join("corpus"));
    let (id, digest) = (&built.index_id, &built.content_digest);
    let base = Key::index_build(id, digest).expect("key");
    let (_, created) = transfer::upload_index_then(&*store, &local.index_dir(id), |_| {
        // GC judged the upload abandoned meanwhile.
        for key in store.list(&base)? {
            store.delete(&key)?;
        }
        Ok(())
    })
    .expect("upload");
    assert_eq!(created, crate::Created::Created);
    let fetched = transfer::fetch_index(&*store, id, digest, &s.join("fetched"));
    assert!(
        matches!(&fetched, Ok(Some(m)) if m.content_digest == *digest),
        "{}: the committed build fetches whole: {fetched:?}",
        store.location()
    );
}

/// A tombstone ten minutes old by the store's clock was left by a GC that stopped: the next
/// GC removes it from a snapshot that is whole, and finishes deleting one whose commit marker
/// was already gone.
pub(super) fn a_stopped_gcs_tombstones_are_cleared(store: Arc<dyn ArtifactStore>, s: &Path) {
    let builder = data_dir(&s.join("builder"), &store);
    std::fs::create_dir_all(s.join("corpus")).expect("dir");
    let import = |name: &str| {
        let corpus = s.join("corpus").join(format!("{name}.jsonl"));
        let line = serde_json::json!({"id": name, "text": format!("about {name}"), "acl": ["*"]});
        std::fs::write(&corpus, format!("{line}\n")).expect("corpus");
        builder.import(&corpus, None).expect("import").snapshot_id
    };
    let (whole, half) = (import("whole"), import("half"));
    for id in [&whole, &half] {
        tombstone::put(&*store, id).expect("tombstone");
    }
    store
        .delete(&Key::snapshot(&half).join("snapshot.json").expect("key"))
        .expect("delete");
    gc_aged(&store, &s.join("gc"), &Key::snapshots(), TWO_HOURS);
    assert!(
        store.get(&tombstone::key(&whole)).expect("get").is_none(),
        "{}: the tombstone is cleared",
        store.location()
    );
    assert!(transfer::snapshot_committed(&*store, &whole).expect("get"));
    assert!(
        store.list(&Key::snapshot(&half)).expect("list").is_empty(),
        "the half-deleted snapshot is finished"
    );
}
