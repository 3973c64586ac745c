//! A replica's data dir when things fail (driven by [`Store::follow_aliases`], as the server's
//! follower drives it): the store cut mid-fetch, objects corrupted, missing or a manifest
//! tampered with, and GC across machines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quire_core::{IndexId, Manifest, Reader};
use quire_index::{Mode, Query};
use quire_store::artifacts::transfer;
use quire_store::{ArtifactStore, Key, Store, StoreError, StoreOptions};

use super::{Cluster, set, two_indexes};

/// The worst case [`quire_testkit::replicas::SHORT`] allows for one file, with room for a loaded machine.
const BOUND: Duration = Duration::from_secs(20);

fn query() -> Query {
    Query {
        text: "parental leave".into(),
        reader: Reader::new(None, ["all-staff"]).unwrap(),
        k: 3,
        mode: Mode::Bm25,
        fusion: None,
        candidates: None,
    }
}

/// Query `alias` on `store` from two threads until stopped: (answers per revision, failures).
struct Load {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
    revisions: Arc<Mutex<Vec<u64>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(store: &Arc<Store>, alias: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicU64::new(0));
        let revisions = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..2)
            .map(|n| {
                let (store, stop) = (store.clone(), stop.clone());
                let (failed, revisions) = (failed.clone(), revisions.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let key = format!("{n}");
                        let answer = store.resolve_target(alias, &key).and_then(|resolved| {
                            store.open_index(&resolved.index)?.search(&query())?;
                            Ok(resolved.via.map(|v| v.revision).unwrap_or(0))
                        });
                        match answer {
                            Ok(revision) => revisions.lock().unwrap().push(revision),
                            Err(e) => {
                                eprintln!("failed: {e}");
                                failed.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            failed,
            revisions,
            threads,
        }
    }

    /// Stop; (failures, every revision answered).
    fn stop(self) -> (u64, Vec<u64>) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        let revisions = std::mem::take(&mut *self.revisions.lock().unwrap());
        (self.failed.load(Ordering::SeqCst), revisions)
    }
}

/// Nothing of `id` and no scratch space in the data dir of `store`.
fn nothing_partial(store: &Store, id: &IndexId) {
    assert!(!store.index_dir(id).exists(), "{id} is not in the data dir");
    let tmp = store.root().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "nothing partial in tmp/: {left:?}");
}

/// One follow round that cannot switch `alias`: its error.
fn refused_round(store: &Store, alias: &str) -> StoreError {
    let mut report = store.follow_aliases().unwrap();
    assert!(report.switched.is_empty(), "{:?}", report.switched);
    let waiting = report.waiting.pop().expect("the alias waits");
    assert_eq!(waiting.alias, alias);
    waiting.error
}

#[test]
fn a_store_cut_mid_fetch_leaves_the_old_revision_serving_and_converges_after() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let builder = cluster.builder("builder");
    let (a, b) = two_indexes(&builder);
    let first = set(&builder, "prod", &a);
    let proxy = cluster.proxy();
    let through = || cluster.artifacts(Some(proxy.endpoint()));
    let replica = Arc::new(cluster.replica_store("replica", through()));
    let before = proxy.forwarded();
    replica.follow_aliases().unwrap();
    let whole = proxy.forwarded() - before;
    assert!(replica.index_dir(&a).exists());

    let second = set(&builder, "prod", &b);
    proxy.stall_after(whole / 2);
    let load = Load::start(&replica, "prod");
    let started = Instant::now();
    let error = refused_round(&replica, "prod");
    let took = started.elapsed();
    assert!(took < BOUND, "failed after {took:?}: {error}");
    assert!(matches!(error, StoreError::Artifact { .. }), "{error:?}");
    std::thread::sleep(Duration::from_millis(100));
    let (failed, revisions) = load.stop();
    assert_eq!(failed, 0, "the old revision kept serving");
    assert!(!revisions.is_empty() && revisions.iter().all(|r| *r == first));
    nothing_partial(&replica, &b);

    // The store is back; a restarted replica (same data dir) converges.
    proxy.resume();
    drop(replica);
    let restarted = cluster.replica_store("replica", through());
    // It starts on the registry's newest revision (health NOT_SERVING until it is local).
    assert!(!restarted.arms_local());
    let report = restarted.follow_aliases().unwrap();
    assert!(report.waiting.is_empty(), "{:?}", report.waiting);
    assert_eq!(restarted.alias("prod").unwrap().revision, second);
    assert!(restarted.index_dir(&b).exists() && restarted.arms_local());
}

/// The bytes of `key` in `store`.
fn object(store: &dyn ArtifactStore, key: &Key) -> Vec<u8> {
    let mut bytes = Vec::new();
    store
        .get(key)
        .unwrap()
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

fn put(store: &dyn ArtifactStore, key: &Key, bytes: &[u8]) {
    store.put(key, &mut &bytes[..], bytes.len() as u64).unwrap();
}

#[test]
fn corrupted_missing_or_tampered_objects_are_refused_naming_them() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let builder = cluster.builder("builder");
    let (a, b) = two_indexes(&builder);
    let first = set(&builder, "prod", &a);
    let store = cluster.artifacts(None);
    let replica = cluster.replica_store("replica", store.clone());
    replica.follow_aliases().unwrap();
    let manifest: Manifest = builder.manifest(&b).unwrap();
    let base = Key::index_build(&b, &manifest.content_digest).unwrap();
    let file = manifest
        .files
        .iter()
        .max_by_key(|f| f.bytes)
        .unwrap()
        .path
        .clone();
    let (file_key, marker) = (
        base.join(&file).unwrap(),
        base.join("manifest.json").unwrap(),
    );
    let (original, original_manifest) = (object(&*store, &file_key), object(&*store, &marker));
    set(&builder, "prod", &b);

    let mut corrupted = original.clone();
    corrupted[original.len() / 2] ^= 1;
    put(&*store, &file_key, &corrupted);
    let error = refused_round(&replica, "prod");
    assert!(
        matches!(error, StoreError::ArtifactRefused { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&file), "names {file}: {error}");

    store.delete(&file_key).unwrap();
    let error = refused_round(&replica, "prod");
    assert!(
        error.to_string().contains(&file) && error.to_string().contains("missing"),
        "{error}"
    );

    // Counts are outside the content digest: only the registry's record catches this edit.
    put(&*store, &file_key, &original);
    let mut tampered: serde_json::Value = serde_json::from_slice(&original_manifest).unwrap();
    tampered["counts"]["chunks"] = (manifest.counts.chunks + 1).into();
    put(&*store, &marker, &serde_json::to_vec(&tampered).unwrap());
    let error = refused_round(&replica, "prod");
    let message = error.to_string();
    assert!(
        message.contains("manifest.json") && message.contains("counts"),
        "{message}"
    );
    assert_eq!(
        replica.alias("prod").unwrap().revision,
        first,
        "never switched"
    );
    nothing_partial(&replica, &b);

    put(&*store, &marker, &original_manifest);
    assert_eq!(replica.follow_aliases().unwrap().switched.len(), 1);
    assert!(replica.index_dir(&b).exists());
}

#[test]
fn gc_across_machines_marks_first_and_replicas_fetch_no_marked_index() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let builder = collecting(&cluster, "builder");
    let (a, b) = two_indexes(&builder);
    set(&builder, "prod", &a);
    set(&builder, "prod", &b);
    let store = cluster.artifacts(None);

    // A mark alone (GC between its two steps): replicas do not fetch the index, and no
    // alias may start serving it.
    let marker = cluster.machine("marker", false, store.clone(), StoreOptions::default());
    set(&builder, "old", &a);
    let draft = quire_store::AuditDraft {
        actor: "gc".into(),
        action: "index.delete.marked".into(),
        target: a.to_string(),
        ..Default::default()
    };
    let registry =
        quire_registry_pg::PgRegistry::connect(&cluster.registry, Default::default()).unwrap();
    use quire_store::Registry;
    registry.mark_deleting(&a, 1, draft).unwrap();
    let replica = cluster.replica_store("replica", store.clone());
    let report = replica.follow_aliases().unwrap();
    let waiting: Vec<_> = report.waiting.iter().map(|w| w.alias.as_str()).collect();
    assert_eq!(waiting, ["old"], "{:?}", report.waiting);
    assert!(matches!(
        report.waiting[0].error,
        StoreError::MarkedForDeletion { .. }
    ));
    assert!(!replica.index_dir(&a).exists() && replica.index_dir(&b).exists());
    let refused = marker
        .change_alias(
            "other",
            &quire_store::AliasChange::Set(a.clone()),
            "r",
            "test",
        )
        .expect_err("a marked index is not served");
    assert!(
        matches!(refused, StoreError::MarkedForDeletion { .. }),
        "{refused}"
    );

    // GC: `old` still holds A, so the mark is called off; once `old` moves on, A goes.
    let report = builder.gc(false, "gc", "test").unwrap();
    assert!(report.kept.contains_key(&a), "{report:?}");
    assert!(
        registry.deleting().unwrap().is_empty(),
        "the mark was called off"
    );
    set(&builder, "old", &b);
    let report = builder.gc(false, "gc", "test").unwrap();
    assert_eq!(report.deleted_indexes, vec![a.clone()], "{report:?}");
    assert!(transfer::index_builds(&*store, &a).unwrap().is_empty());
    assert!(
        store.list(&Key::index(&a)).unwrap().is_empty(),
        "every object of {a} is gone"
    );
    assert_eq!(registry.manifest(&a).unwrap(), None);
    let actions: Vec<String> = registry
        .audit_events()
        .unwrap()
        .into_iter()
        .filter(|e| e.target == a.as_str())
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "index.build",
            "index.delete.marked",
            "index.delete.cancelled",
            "index.delete.marked",
            "index.delete"
        ]
    );
    assert!(
        transfer::index_builds(&*store, &b).unwrap().len() == 1,
        "B stays"
    );

    // `delete` of one index goes everywhere too, the same way; a live one is refused.
    let live = builder
        .delete_index(&b, "admin", "test")
        .expect_err("B is live");
    assert!(matches!(live, StoreError::Live { .. }), "{live}");
    let snapshot = builder.manifest(&b).unwrap().snapshot_id;
    let spec = quire_core::BuildSpec::from_toml(
        "version = 1\n[chunking]\nstrategy = \"fixed\"\nmax_tokens = 32\noverlap = 0\n",
        "fixed",
    )
    .unwrap();
    let c = builder
        .build_as(&snapshot, &spec, &quire_index::NoProgress, "builder")
        .unwrap()
        .manifest
        .index_id;
    builder.delete_index(&c, "admin", "test").unwrap();
    assert!(
        store.list(&Key::index(&c)).unwrap().is_empty(),
        "every object of {c} is gone"
    );
    assert!(!builder.index_dir(&c).exists() && registry.manifest(&c).unwrap().is_none());
}

/// The targets of the audit events `action` in `store`'s registry, oldest first.
fn targets(store: &Store, action: &str) -> Vec<String> {
    let events = store.audit_events().unwrap().into_iter();
    events
        .filter(|e| e.action == action)
        .map(|e| e.target)
        .collect()
}

/// Machine `name`, whose GC also takes builds made a moment ago.
fn collecting(cluster: &Cluster, name: &str) -> Store {
    let options = StoreOptions {
        gc_fresh: Duration::ZERO,
        ..quick_gc()
    };
    cluster.machine(name, false, cluster.artifacts(None), options)
}

/// GC keeping one revision and waiting 300 ms after marking.
fn quick_gc() -> StoreOptions {
    StoreOptions {
        gc_keep_revisions: 1,
        gc_grace: Duration::from_millis(300),
        ..StoreOptions::default()
    }
}

#[test]
fn gc_keeps_what_another_machine_is_uploading_or_has_just_built() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let builder = cluster.machine("builder", false, cluster.artifacts(None), quick_gc());
    let (a, b) = two_indexes(&builder);
    set(&builder, "prod", &b);
    // Another machine is uploading a build: its files are there, its commit marker and its
    // registry record are not yet.
    let store = cluster.artifacts(None);
    let arriving: IndexId = format!("idx-{}", "7".repeat(64)).parse().unwrap();
    let part = Key::index_build(&arriving, &"8".repeat(64))
        .unwrap()
        .join("vectors.f32")
        .unwrap();
    put(&*store, &part, b"half an upload");

    // A was just built and nothing holds it yet: kept, like the upload; nothing is marked.
    let report = builder.gc(false, "gc", "test").unwrap();
    assert!(report.deleted_indexes.is_empty(), "{report:?}");
    let why = report.kept[&a].join("; ");
    assert!(
        why.contains("by the store's clock") && why.contains("alias or pin it"),
        "{why}"
    );
    let why = report.kept[&arriving].join("; ");
    assert!(why.contains("upload in progress"), "{why}");
    let registry =
        quire_registry_pg::PgRegistry::connect(&cluster.registry, Default::default()).unwrap();
    use quire_store::Registry;
    assert!(registry.deleting().unwrap().is_empty(), "nothing marked");
    assert_eq!(transfer::index_builds(&*store, &a).unwrap().len(), 1);
    assert!(
        store.get(&part).unwrap().is_some(),
        "the upload is untouched"
    );

    // With a window of zero, A goes, and so does the upload: never committed and no longer
    // younger than the window, by the store's clock, it counts as abandoned.
    let later = collecting(&cluster, "later");
    let report = later.gc(false, "gc", "test").unwrap();
    assert_eq!(report.deleted_indexes, vec![a.clone()], "{report:?}");
    assert!(transfer::index_builds(&*store, &a).unwrap().is_empty());
    assert!(store.get(&part).unwrap().is_none(), "the upload is gone");
    assert_eq!(
        targets(&later, "index.upload.delete"),
        [arriving.to_string()]
    );
}

#[test]
fn gc_across_machines_deletes_a_snapshot_once_no_index_in_the_store_needs_it() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let builder = collecting(&cluster, "builder");
    let (a, b) = two_indexes(&builder);
    set(&builder, "prod", &b);
    let first = builder.manifest(&b).unwrap().snapshot_id;
    let import = |name: &str, text: &str| {
        let corpus = cluster.dir.path().join(format!("{name}.jsonl"));
        let line = serde_json::json!({"id": name, "text": text, "acl": ["*"]});
        std::fs::write(&corpus, format!("{line}\n")).unwrap();
        builder
            .import_as(&corpus, None, "builder")
            .unwrap()
            .snapshot_id
    };
    // A second snapshot with one index nothing holds, and a third with no index yet.
    let second = import("second", "the cafeteria opens at eight");
    let spec = quire_core::BuildSpec::default();
    let d = builder
        .build_as(&second, &spec, &quire_index::NoProgress, "builder")
        .unwrap()
        .manifest
        .index_id;
    let third = import("third", "the parking garage closes at ten");

    let report = builder.gc(false, "gc", "test").unwrap();
    let mut deleted = vec![a, d];
    deleted.sort();
    assert_eq!(report.deleted_indexes, deleted, "{report:?}");
    assert_eq!(report.deleted_snapshots, vec![second.clone()], "{report:?}");
    let store = cluster.artifacts(None);
    let objects = |s| store.list(&Key::snapshot(s)).unwrap().len();
    assert!(
        objects(&first) > 0 && objects(&third) > 0,
        "the other two stay"
    );
    assert_eq!(objects(&second), 0, "every object of the second is gone");
    assert_eq!(targets(&builder, "snapshot.delete"), [second.to_string()]);
}
