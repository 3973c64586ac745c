//! Two builders racing on one index id: with the same bytes, and with other bytes (as another
//! CPU kernel path or quire version builds them). The registry keeps the first record; the
//! loser records nothing and removes its upload and its local copy, so every machine serves
//! the winner's build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Barrier;

use quire_core::{BuildSpec, IndexId};
use quire_index::NoProgress;
use quire_store::artifacts::conformance::other_bytes;
use quire_store::artifacts::transfer;
use quire_store::{Key, Store};

use super::{Cluster, set, two_indexes};

/// The `index.build` events for `id`.
fn build_events(store: &Store, id: &IndexId) -> usize {
    store
        .audit_events()
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "index.build" && e.target == id.as_str())
        .count()
}

#[test]
fn two_builders_racing_on_one_id_record_one_build() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let builders: Vec<Store> = ["one", "two"].iter().map(|n| cluster.builder(n)).collect();
    let built: Vec<(IndexId, IndexId)> = std::thread::scope(|s| {
        let racing: Vec<_> = builders
            .iter()
            .map(|b| s.spawn(|| two_indexes(b)))
            .collect();
        racing.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(built[0], built[1], "the same ids on both machines");
    let (a, _) = &built[0];
    let recorded = builders[0].manifest(a).unwrap().content_digest;
    let store = cluster.artifacts(None);
    assert_eq!(
        transfer::index_builds(&*store, a).unwrap(),
        vec![recorded.clone()]
    );
    assert_eq!(
        build_events(&builders[0], a),
        1,
        "one audit event for the id"
    );
    set(&builders[1], "prod", a);
    let replica = cluster.replica_store("replica", store);
    replica.follow_aliases().unwrap();
    let open = replica.open_index(a).unwrap();
    assert_eq!(open.manifest().content_digest, recorded);
}

#[test]
fn two_builders_racing_with_other_bytes_leave_the_winners_build_everywhere() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let builders: Vec<Store> = ["one", "two"].iter().map(|n| cluster.builder(n)).collect();
    // Both machines hold a build of one id, neither published yet; the second's has other bytes.
    let snapshot = builders[0]
        .import_as(&quire_testkit::handbook(), None, "builder")
        .unwrap()
        .snapshot_id;
    let spec = BuildSpec::default();
    let ours = builders[0].build(&snapshot, &spec, &NoProgress).unwrap();
    let id = ours.manifest.index_id.clone();
    let theirs = other_bytes(&builders[0].index_dir(&id), &builders[1].index_dir(&id));
    let digests = [ours.manifest.content_digest.clone(), theirs];
    assert_ne!(digests[0], digests[1]);

    let start = Barrier::new(2);
    let reported: Vec<String> = std::thread::scope(|s| {
        let racing: Vec<_> = builders
            .iter()
            .zip(["one", "two"])
            .map(|(b, name)| {
                let (start, snapshot, spec) = (&start, &snapshot, &spec);
                s.spawn(move || {
                    start.wait();
                    b.build_as(snapshot, spec, &NoProgress, name)
                        .unwrap()
                        .manifest
                        .content_digest
                })
            })
            .collect();
        racing.into_iter().map(|t| t.join().unwrap()).collect()
    });

    let winner = builders[0].manifest(&id).unwrap().content_digest;
    assert!(digests.contains(&winner), "{winner} is one of the builds");
    let loser = digests.iter().find(|d| **d != winner).unwrap();
    assert_eq!(
        reported,
        [winner.clone(), winner.clone()],
        "both report the record"
    );
    let rows = quire_testkit::pg::scalar(
        &cluster.registry_url,
        &format!("SELECT count(*) FROM manifests WHERE index_id = '{id}'"),
    );
    assert_eq!(rows, 1, "one registry row");
    assert_eq!(build_events(&builders[0], &id), 1, "one audit event");
    assert!(builders[1].audit_verify().unwrap().ok);
    let store = cluster.artifacts(None);
    assert_eq!(
        transfer::index_builds(&*store, &id).unwrap(),
        std::slice::from_ref(&winner)
    );
    let left = store.list(&Key::index_build(&id, loser).unwrap()).unwrap();
    assert!(left.is_empty(), "the loser's objects are gone: {left:?}");

    // Every machine serves the winner's build: both builders (the loser fetches it) and two
    // replicas.
    set(&builders[1], "prod", &id);
    let replicas: Vec<Store> = ["r1", "r2"]
        .iter()
        .map(|n| cluster.replica_store(n, cluster.artifacts(None)))
        .collect();
    for machine in builders.iter().chain(&replicas) {
        machine.follow_aliases().unwrap();
        let resolved = machine.resolve_target("prod", "k").unwrap();
        let open = machine.open_index(&resolved.index).unwrap();
        assert_eq!(
            open.manifest().content_digest,
            winner,
            "{}",
            machine.root().display()
        );
        let on_disk = quire_index::verify_dir(&machine.index_dir(&id)).unwrap();
        assert!(
            on_disk.ok && on_disk.content_digest == winner,
            "{on_disk:?}"
        );
    }
}
