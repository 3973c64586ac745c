//! Aliases, pins, GC, the audit log and the index cache, against a real data dir.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quire_core::{BuildSpec, IndexId, Reader};
use quire_index::{Arm, Mode, NoProgress, Query};
use quire_store::{
    Access, AliasChange, CachePolicy, CorpusFormat, Store, StoreError, StoreOptions,
};
use tempfile::TempDir;

fn spec(dim: u32) -> BuildSpec {
    let text = format!(
        "version = 1\ndefault_acl = [\"*\"]\n[embedding]\nmodel = \"hash-v1\"\ndim = {dim}\n[hnsw]\nm = 4\nef_construction = 16\nef_search = 8\n"
    );
    BuildSpec::from_toml(&text, "<test>").unwrap()
}

/// A data dir with three indices of the same corpus (different dims give different ids).
fn setup(options: StoreOptions) -> (TempDir, Store, Vec<IndexId>) {
    let dir = TempDir::new().unwrap();
    let corpus = dir.path().join("c.jsonl");
    let lines: Vec<String> = (0..20)
        .map(|i| format!("{{\"id\":\"d{i}\",\"text\":\"alpha beta gamma word{i}\"}}"))
        .collect();
    std::fs::write(&corpus, lines.join("\n")).unwrap();
    let store = Store::open(dir.path().join("data"), Access::Write)
        .unwrap()
        .with_options(options);
    let snap = store.import(&corpus, Some(CorpusFormat::Jsonl)).unwrap();
    let ids = [16, 24, 32]
        .map(|dim| {
            store
                .build(&snap.snapshot_id, &spec(dim), &NoProgress)
                .unwrap()
                .manifest
                .index_id
        })
        .to_vec();
    (dir, store, ids)
}

fn query() -> Query {
    Query {
        text: "alpha".into(),
        reader: Reader::new(Some("u"), &[] as &[String]).unwrap(),
        k: 3,
        mode: Mode::Hybrid,
        fusion: None,
        candidates: None,
    }
}

#[test]
fn aliases_keep_their_history_across_reopen_and_targets_resolve() {
    let (dir, store, ids) = setup(StoreOptions::default());
    let r1 = store
        .change_alias("prod", &AliasChange::Set(ids[0].clone()), "alice", "first")
        .unwrap();
    assert_eq!(r1.revision, 1);
    store
        .change_alias(
            "prod",
            &AliasChange::Canary(ids[1].clone(), 5000),
            "alice",
            "try b",
        )
        .unwrap();
    let r3 = store
        .change_alias("prod", &AliasChange::Promote, "bob", "b is good")
        .unwrap();
    assert_eq!((r3.revision, &r3.state.primary), (3, &ids[1]));
    let err = store
        .change_alias("prod", &AliasChange::Promote, "bob", "again")
        .unwrap_err();
    assert!(err.to_string().contains("no canary"), "{err}");
    let err = store
        .change_alias("prod", &AliasChange::Set(ids[0].clone()), "bob", " ")
        .unwrap_err();
    assert!(err.to_string().contains("reason"), "{err}");

    let now = store.resolve_target("prod", "k").unwrap();
    assert_eq!(now.index, ids[1]);
    let then = store.resolve_target("prod@1", "k").unwrap();
    assert_eq!(then.index, ids[0]);
    assert_eq!(then.via.unwrap().revision, 1);
    let direct = store.resolve_target(ids[2].as_str(), "k").unwrap();
    assert_eq!((direct.index, direct.via), (ids[2].clone(), None));
    assert!(store.resolve_target("prod@9", "k").is_err());

    drop(store);
    let store = Store::open(dir.path().join("data"), Access::Read).unwrap();
    let history = store.alias_history("prod").unwrap();
    assert_eq!(
        history
            .iter()
            .map(|r| r.action.as_str())
            .collect::<Vec<_>>(),
        ["set", "canary", "promote"]
    );
    assert_eq!(store.alias("prod").unwrap().state.primary, ids[1]);
    let audit = store.audit_verify().unwrap();
    assert!(audit.ok, "{audit:?}");
    let actions: Vec<String> = store
        .audit_events()
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["alias.set", "alias.canary", "alias.promote"]);
    let err = store
        .change_alias("prod", &AliasChange::Rollback(None), "a", "r")
        .unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
}

#[test]
fn canary_routing_is_sticky_and_lineage_names_the_arm() {
    let (_dir, store, ids) = setup(StoreOptions::default());
    store
        .change_alias("a", &AliasChange::Set(ids[0].clone()), "t", "r")
        .unwrap();
    store
        .change_alias("a", &AliasChange::Canary(ids[1].clone(), 1000), "t", "r")
        .unwrap();
    let mut canary = 0;
    for i in 0..2000 {
        let key = format!("user-{i}");
        let r = store.resolve_target("a", &key).unwrap();
        let via = r.via.unwrap();
        let expected = if via.arm == Arm::Canary {
            canary += 1;
            &ids[1]
        } else {
            &ids[0]
        };
        assert_eq!(&r.index, expected);
        assert_eq!(store.resolve_target("a", &key).unwrap().index, r.index);
    }
    assert!((140..=260).contains(&canary), "{canary} of 2000 at 10%");
}

#[test]
fn gc_keeps_live_indices_and_refuses_to_delete_them() {
    let options = StoreOptions {
        gc_keep_revisions: 1,
        ..StoreOptions::default()
    };
    let (_dir, store, ids) = setup(options);
    store
        .change_alias("a", &AliasChange::Set(ids[0].clone()), "t", "r")
        .unwrap();
    store
        .pin(
            &ids[1],
            "eval",
            Some(Duration::from_secs(3600)),
            "t",
            "hold",
        )
        .unwrap();
    for id in &ids[..2] {
        let err = store.delete_index(id, "t", "r").unwrap_err();
        assert!(matches!(err, StoreError::Live { .. }), "{err}");
    }
    let dry = store.gc(true, "t", "r").unwrap();
    assert_eq!(dry.deleted_indexes, [ids[2].clone()]);
    assert!(store.manifest(&ids[2]).is_ok(), "a dry run deletes nothing");
    // An index a query still holds is not deleted.
    let held = store.open_index(&ids[2]).unwrap();
    let report = store.gc(false, "t", "r").unwrap();
    assert!(report.deleted_indexes.is_empty(), "{report:?}");
    drop(held);
    let report = store.gc(false, "t", "r").unwrap();
    assert_eq!(report.deleted_indexes, [ids[2].clone()]);
    assert!(
        report.deleted_snapshots.is_empty(),
        "the snapshot still backs live indices"
    );
    assert!(store.manifest(&ids[2]).is_err());
    // Repointing keeps the previous primary only while it is within the last N revisions.
    store
        .change_alias("a", &AliasChange::Set(ids[1].clone()), "t", "r")
        .unwrap();
    store.unpin(&ids[1], "eval", "t", "done").unwrap();
    let report = store.gc(false, "t", "r").unwrap();
    assert_eq!(report.deleted_indexes, [ids[0].clone()]);
    assert!(store.audit_verify().unwrap().ok);
    let actions: Vec<String> = store
        .audit_events()
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&"gc".to_owned()) && actions.contains(&"unpin".to_owned()));
}

#[test]
fn the_cache_closes_unprotected_indices_over_budget_but_never_alias_arms() {
    let options = StoreOptions {
        cache: CachePolicy {
            budget_bytes: 1,
            idle: Duration::from_secs(3600),
        },
        ..StoreOptions::default()
    };
    let (_dir, store, ids) = setup(options);
    store
        .change_alias("a", &AliasChange::Set(ids[0].clone()), "t", "r")
        .unwrap();
    for id in &ids {
        store.open_index(id).unwrap().search(&query()).unwrap();
    }
    let open = store.open_indexes();
    assert!(open.contains(&ids[0]), "the alias's primary stays open");
    assert!(open.contains(&ids[2]), "the index just used stays open");
    assert!(!open.contains(&ids[1]), "over budget, the LRU one closes");
    store.sweep_cache();
    assert_eq!(
        store.open_indexes().into_iter().collect::<Vec<_>>(),
        [ids[0].clone()]
    );
}

fn report(store: &Store, index: &IndexId, spec: &str, ndcg: f64) -> String {
    let headline = quire_store::Headline {
        ndcg_at_10: ndcg,
        recall_at_10: ndcg,
        recall_at_100: ndcg,
        mrr_at_10: ndcg,
    };
    let full = serde_json::json!({ "index_id": index, "ndcg_at_10": ndcg, "spec": spec });
    store
        .store_eval_report(index, spec, "bm25", headline, full, "evaluator")
        .unwrap()
        .report_id
}

#[test]
fn gated_promotions_need_a_passing_report_and_forcing_is_audited() {
    let (_dir, store, ids) = setup(StoreOptions::default());
    let policy = |spec: &str| quire_store::GatePolicy {
        eval_spec: spec.into(),
        mode: "bm25".into(),
        min_ndcg10: Some(0.5),
        max_regression: Some(0.02),
    };
    store
        .change_alias("a", &AliasChange::Set(ids[0].clone()), "t", "r")
        .unwrap();
    report(&store, &ids[0], "spec-1", 0.60);
    store
        .change_alias(
            "a",
            &AliasChange::SetPolicy(policy("spec-1")),
            "t",
            "gate it",
        )
        .unwrap();
    let err = store
        .change_alias("a", &AliasChange::SetPolicy(policy("spec-2")), "t", "r")
        .unwrap_err();
    assert!(err.to_string().contains("rebaseline"), "{err}");
    store
        .change_alias("a", &AliasChange::Canary(ids[1].clone(), 1000), "t", "r")
        .unwrap();

    let refused = |store: &Store, needle: &str| {
        let err = store
            .change_alias("a", &AliasChange::Promote, "t", "ship")
            .unwrap_err();
        assert!(matches!(err, StoreError::Gate { .. }), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    };
    refused(&store, "no evaluation report");
    report(&store, &ids[1], "spec-other", 0.9);
    refused(&store, "no evaluation report");
    report(&store, &ids[1], "spec-1", 0.45);
    refused(&store, "below the gate's minimum");
    report(&store, &ids[1], "spec-1", 0.55);
    refused(&store, "more than 0.02 below the primary");
    let passing = report(&store, &ids[1], "spec-1", 0.59);
    let promoted = store
        .change_alias("a", &AliasChange::Promote, "t", "ship")
        .unwrap();
    assert_eq!(promoted.state.primary, ids[1]);
    // A gated set to an unevaluated index is refused, and forcing it is recorded.
    let err = store
        .change_alias("a", &AliasChange::Set(ids[2].clone()), "t", "r")
        .unwrap_err();
    assert!(matches!(err, StoreError::Gate { .. }), "{err}");
    store
        .change_alias_with(
            "a",
            &AliasChange::Set(ids[2].clone()),
            "root",
            "hotfix",
            true,
        )
        .unwrap();
    // Rolling back is never gated.
    store
        .change_alias("a", &AliasChange::Rollback(None), "t", "undo")
        .unwrap();
    let events = store.audit_events().unwrap();
    let promote = events.iter().find(|e| e.action == "alias.promote").unwrap();
    assert_eq!(promote.evidence["gate"]["candidate_report"], passing);
    let forced = events
        .iter()
        .find(|e| e.actor == "root" && e.action == "alias.set")
        .unwrap();
    assert_eq!(forced.evidence["gate"]["forced"], true);
    assert!(
        forced.evidence["gate"]["refusal"]
            .as_str()
            .unwrap()
            .contains("no evaluation report")
    );
    // Rebaselining needs the primary evaluated under the new spec.
    let err = store
        .change_alias(
            "a",
            &AliasChange::Rebaseline(policy("spec-2")),
            "t",
            "new qrels",
        )
        .unwrap_err();
    assert!(err.to_string().contains("cannot rebaseline"), "{err}");
    report(&store, &ids[1], "spec-2", 0.7);
    let rebased = store
        .change_alias(
            "a",
            &AliasChange::Rebaseline(policy("spec-2")),
            "t",
            "new qrels",
        )
        .unwrap();
    assert_eq!(rebased.state.policy.unwrap().eval_spec, "spec-2");
    assert!(store.audit_verify().unwrap().ok);
}

#[test]
fn an_index_id_is_recorded_once_even_when_rebuilt_after_a_delete() {
    let dir = TempDir::new().unwrap();
    let corpus = dir.path().join("c.jsonl");
    std::fs::write(&corpus, "{\"id\":\"d\",\"text\":\"alpha beta\"}\n").unwrap();
    let store = Store::open(dir.path().join("data"), Access::Write).unwrap();
    let snap = store.import(&corpus, Some(CorpusFormat::Jsonl)).unwrap();
    let build = || {
        store
            .build_as(&snap.snapshot_id, &spec(16), &NoProgress, "alice")
            .unwrap()
    };
    let first = build();
    store
        .delete_index(&first.manifest.index_id, "alice", "make room")
        .unwrap();
    let again = build();
    assert!(!again.reused, "the index was built again");
    assert_eq!(again.manifest.index_id, first.manifest.index_id);
    let builds = store
        .audit_events()
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "index.build")
        .count();
    assert_eq!(builds, 1, "the registry keeps the first record of an id");
    assert!(store.audit_verify().unwrap().ok);
}
