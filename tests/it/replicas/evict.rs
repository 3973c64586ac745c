//! A replica's disk follows its open-index cache: an index no alias arm serves, not open and
//! held by no query is removed after a follow round; an arm (primary or canary) or an index a
//! query holds never is; an evicted revision asked for again is fetched again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use quire_store::{AliasChange, CachePolicy, StoreOptions};

use super::{Cluster, set, two_indexes};

#[test]
fn a_replica_evicts_from_disk_what_its_cache_closed_never_an_arm_in_use() {
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let builder = cluster.builder("builder");
    let (a, b) = two_indexes(&builder);
    let first = set(&builder, "prod", &a);
    // A budget of nothing: every index no arm serves is closed as soon as another opens.
    let options = StoreOptions {
        cache: CachePolicy {
            budget_bytes: 0,
            ..CachePolicy::default()
        },
        evict_unused: true,
        ..StoreOptions::default()
    };
    let replica = cluster.machine("replica", true, cluster.artifacts(None), options);
    assert!(replica.follow_aliases().unwrap().evicted.is_empty());
    assert!(replica.index_dir(&a).exists());

    // A canary: both arms are served, neither goes.
    let canary = AliasChange::Canary(b.clone(), 5000);
    builder
        .change_alias("prod", &canary, "releaser", "test")
        .unwrap();
    let report = replica.follow_aliases().unwrap();
    assert!(report.evicted.is_empty(), "{:?}", report.evicted);
    assert!(replica.index_dir(&a).exists() && replica.index_dir(&b).exists());

    // Promoted: A serves no arm. The sweep closes it (over budget), but a query still holds
    // it, so it stays on disk until the query is done.
    builder
        .change_alias("prod", &AliasChange::Promote, "releaser", "test")
        .unwrap();
    let held = replica.open_index(&a).unwrap();
    let report = replica.follow_aliases().unwrap();
    assert_eq!(report.switched.len(), 1);
    replica.sweep_cache();
    assert!(!replica.open_indexes().contains(&a), "closed");
    assert!(replica.index_dir(&a).exists(), "held by a query");
    drop(held);
    replica.sweep_cache();
    assert!(!replica.index_dir(&a).exists(), "A was evicted");
    assert!(replica.index_dir(&b).exists(), "the primary stays");
    let report = replica.follow_aliases().unwrap();
    assert!(report.evicted.is_empty(), "{:?}", report.evicted);
    assert!(replica.index_dir(&b).exists());

    // The old revision, asked for by number, is fetched again.
    let old = replica
        .resolve_target(&format!("prod@{first}"), "k")
        .unwrap();
    assert_eq!(old.index, a);
    let open = replica.open_index(&old.index).unwrap();
    assert_eq!(open.manifest().index_id, a);
    assert!(replica.index_dir(&a).exists());

    // A writer's data dir (no eviction by default) keeps everything.
    assert!(builder.evict_unused().unwrap().is_empty());
    assert!(builder.index_dir(&a).exists());
}
