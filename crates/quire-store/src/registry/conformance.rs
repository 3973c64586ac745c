//! The conformance suite every [`Registry`] backend must pass: call [`run`] with a factory of
//! fresh, empty, writable registries (redb's runs in this crate's tests; another backend runs it
//! from its own).

#![allow(clippy::expect_used)]

use quire_core::manifest::{BuildInfo, Counts, ModelInfo, Versions};
use quire_core::{BuildSpec, IndexId, Manifest};
use quire_release::canary::Stratum;
use quire_release::outcome::{CpuMicros, FeedbackLabel, FeedbackRecord};
use quire_release::sampling::{SampleQuery, SampleRecord, SampledQuery, StepMicros};
use quire_release::{AliasChange, AuditDraft, CanaryReport, Intent, Pin, ReportRecord};
use serde_json::json;

use super::{Published, Registry};
use crate::error::StoreError;

/// Run every check against registries made by `fresh`; panics naming the first that fails.
pub fn run(fresh: &dyn Fn() -> Box<dyn Registry>) {
    empty_registry_is_empty_and_verifies(&*fresh());
    alias_changes_commit_with_their_audit_event(&*fresh());
    a_refused_decision_writes_nothing(&*fresh());
    pins_replace_list_and_remove(&*fresh());
    reports_are_stored_oldest_first_and_audited(&*fresh());
    the_audit_chain_links_every_mutation(&*fresh());
    the_first_manifest_of_an_id_wins(&*fresh());
    manifests_read_back_whole(&*fresh());
    deletion_marks_are_kept_once_and_removed(&*fresh());
    alias_heads_are_the_newest_revisions(&*fresh());
    the_audit_log_reads_in_pages(&*fresh());
    samples_are_selected_newest_first_and_pruned(&*fresh());
    canary_reports_are_audited_listed_and_pruned(&*fresh());
    feedback_is_listed_per_alias_and_pruned(&*fresh());
}

/// The action of every audit event, in order.
fn actions(r: &dyn Registry) -> Vec<String> {
    r.audit_events()
        .expect("events")
        .into_iter()
        .map(|e| e.action)
        .collect()
}

fn idx(n: u8) -> IndexId {
    format!("idx-{}", format!("{n:02x}").repeat(32))
        .parse()
        .expect("a well-formed index id")
}

fn draft(action: &str, target: &str) -> AuditDraft {
    AuditDraft {
        actor: "conformance".into(),
        action: action.into(),
        target: target.into(),
        reason: "test".into(),
        ..AuditDraft::default()
    }
}

fn change(registry: &dyn Registry, alias: &str, change: &AliasChange) -> crate::Result<u64> {
    let (revision, event) = registry.commit_alias(alias, &mut |history, _| {
        let revision = change.revise(alias, history, "t".into(), "conformance", "test")?;
        Ok((
            revision,
            draft(&format!("alias.{}", change.action()), alias),
        ))
    })?;
    assert_eq!(event.target, alias, "the audit event names the alias");
    Ok(revision.revision)
}

fn empty_registry_is_empty_and_verifies(r: &dyn Registry) {
    assert!(r.alias_revisions().expect("alias revisions").is_empty());
    assert!(r.alias_history("a").expect("history").is_empty());
    assert!(r.pins().expect("pins").is_empty());
    assert!(r.eval_reports().expect("reports").is_empty());
    assert!(r.audit_events().expect("events").is_empty());
    let v = r.verify_audit().expect("verify");
    assert!(v.ok && v.events == 0 && v.head_seq == 0, "{v:?}");
}

fn alias_changes_commit_with_their_audit_event(r: &dyn Registry) {
    assert_eq!(change(r, "a", &AliasChange::Set(idx(1))).expect("set"), 1);
    assert_eq!(
        change(r, "a", &AliasChange::Canary(idx(2), 500)).expect("canary"),
        2
    );
    assert_eq!(change(r, "b", &AliasChange::Set(idx(3))).expect("set b"), 1);
    assert_eq!(change(r, "a", &AliasChange::Promote).expect("promote"), 3);
    let history = r.alias_history("a").expect("history");
    let revisions: Vec<u64> = history.iter().map(|h| h.revision).collect();
    assert_eq!(revisions, [1, 2, 3]);
    assert_eq!(history[2].state.primary, idx(2));
    let all = r.alias_revisions().expect("all");
    assert_eq!(all.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(all["b"].len(), 1);
    let actions = actions(r);
    assert_eq!(
        actions,
        ["alias.set", "alias.canary", "alias.set", "alias.promote"]
    );
}

fn a_refused_decision_writes_nothing(r: &dyn Registry) {
    change(r, "a", &AliasChange::Set(idx(1))).expect("set");
    let refused = change(r, "a", &AliasChange::Promote);
    assert!(
        matches!(refused, Err(StoreError::Release { .. })),
        "{refused:?}"
    );
    let failed = r.commit_alias("a", &mut |_, _| {
        Err(StoreError::Invalid {
            field: "test",
            reason: "refused".into(),
        })
    });
    assert!(failed.is_err());
    assert_eq!(r.alias_history("a").expect("history").len(), 1);
    assert_eq!(r.audit_events().expect("events").len(), 1);
    assert!(r.verify_audit().expect("verify").ok);
}

fn pin(index: IndexId, holder: &str, reason: &str) -> Pin {
    Pin {
        index_id: index,
        holder: holder.into(),
        created: "2026-01-01T00:00:00Z".into(),
        expires: None,
        actor: "conformance".into(),
        reason: reason.into(),
    }
}

fn pins_replace_list_and_remove(r: &dyn Registry) {
    r.put_pin(&pin(idx(1), "eval", "first"), draft("pin", "1"))
        .expect("pin");
    r.put_pin(&pin(idx(1), "eval", "second"), draft("pin", "1"))
        .expect("re-pin");
    r.put_pin(&pin(idx(2), "team", "x"), draft("pin", "2"))
        .expect("pin 2");
    let pins = r.pins().expect("pins");
    assert_eq!(pins.len(), 2, "a holder's second pin replaces its first");
    assert_eq!(pins[0].reason, "second");
    let (removed, event) = r
        .remove_pin(&idx(1), "eval", &mut |p| {
            draft("unpin", p.index_id.as_str())
        })
        .expect("unpin");
    assert_eq!(removed.reason, "second");
    assert_eq!(event.action, "unpin");
    let missing = r.remove_pin(&idx(1), "eval", &mut |_| draft("unpin", "1"));
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(r.pins().expect("pins").len(), 1);
    assert_eq!(r.audit_events().expect("events").len(), 4);
}

fn report(id: &str, created: &str) -> ReportRecord {
    ReportRecord {
        report_id: id.into(),
        index_id: idx(1),
        eval_spec: "spec".into(),
        mode: "bm25".into(),
        ndcg_at_10: 0.5,
        recall_at_10: 0.5,
        recall_at_100: 0.9,
        mrr_at_10: 0.5,
        created: created.into(),
        actor: "conformance".into(),
        report: json!({ "per_query": [] }),
    }
}

fn reports_are_stored_oldest_first_and_audited(r: &dyn Registry) {
    r.put_eval_report(
        &report("evr-b", "2026-01-02T00:00:00Z"),
        draft("eval.report", "1"),
    )
    .expect("report");
    r.put_eval_report(
        &report("evr-a", "2026-01-01T00:00:00Z"),
        draft("eval.report", "1"),
    )
    .expect("report");
    let ids: Vec<String> = r
        .eval_reports()
        .expect("reports")
        .into_iter()
        .map(|x| x.report_id)
        .collect();
    assert_eq!(ids, ["evr-a", "evr-b"], "oldest first");
    assert_eq!(
        r.eval_reports().expect("reports")[0],
        report("evr-a", "2026-01-01T00:00:00Z")
    );
    assert_eq!(r.audit_events().expect("events").len(), 2);
}

fn the_audit_chain_links_every_mutation(r: &dyn Registry) {
    for i in 0..5 {
        r.append_audit(draft("test", &format!("t{i}")))
            .expect("append");
    }
    change(r, "a", &AliasChange::Set(idx(1))).expect("set");
    let events = r.audit_events().expect("events");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let v = r.verify_audit().expect("verify");
    assert!(v.ok, "{v:?}");
    assert_eq!((v.events, v.head_seq), (6, 6));
    assert_eq!(v.head_hash, events[5].hash);
}

fn the_audit_log_reads_in_pages(r: &dyn Registry) {
    assert!(r.audit_page(0, 10).expect("page").is_empty());
    for i in 0..7 {
        r.append_audit(draft("gc", &format!("t{i}")))
            .expect("append");
    }
    let seqs = |after: u64, limit: usize| -> Vec<u64> {
        let page = r.audit_page(after, limit).expect("page");
        page.iter().map(|e| e.seq).collect()
    };
    assert_eq!(seqs(0, 3), [1, 2, 3]);
    assert_eq!(seqs(3, 3), [4, 5, 6]);
    assert_eq!(seqs(6, 3), [7]);
    assert!(seqs(7, 3).is_empty());
    assert!(seqs(u64::MAX, 3).is_empty());
    assert!(seqs(0, 0).is_empty());
    let all = r.audit_events().expect("events");
    assert_eq!(r.audit_page(0, usize::MAX).expect("page"), all);
}

/// A minimal well-formed manifest of `index` with `digest`, for a backend's own tests.
pub fn manifest(index: IndexId, digest: &str) -> Manifest {
    Manifest {
        index_id: index,
        content_digest: digest.into(),
        snapshot_id: format!("snap-{}", "ab".repeat(32))
            .parse()
            .expect("a well-formed snapshot id"),
        spec: BuildSpec::default(),
        counts: Counts {
            documents: 1,
            chunks: 1,
            vectors: 1,
        },
        embedding: ModelInfo {
            model_id: "hash-v1".into(),
            digest: "d".into(),
            dim: 8,
        },
        permission_digest: "p".into(),
        versions: Versions {
            format: 1,
            quire: "0".into(),
            tantivy: "0".into(),
            hnsw_rs: "0".into(),
        },
        files: Vec::new(),
        build: BuildInfo::default(),
    }
}

fn the_first_manifest_of_an_id_wins(r: &dyn Registry) {
    let first = r
        .put_manifest(&manifest(idx(1), "first"), draft("index.build", "1"))
        .expect("first manifest");
    assert!(
        matches!(first, Published::Recorded(ref e) if e.seq == 1),
        "{first:?}"
    );
    let second = r
        .put_manifest(&manifest(idx(1), "second"), draft("index.build", "1"))
        .expect("second manifest");
    assert_eq!(
        second,
        Published::Exists {
            content_digest: "first".into()
        },
        "the second build of an id records nothing and learns the winner's digest"
    );
    r.put_manifest(&manifest(idx(2), "other"), draft("index.build", "2"))
        .expect("another id");
    assert_eq!(r.audit_events().expect("events").len(), 2);
    assert!(r.verify_audit().expect("verify").ok);
}

fn manifests_read_back_whole(r: &dyn Registry) {
    assert_eq!(r.manifest(&idx(1)).expect("read"), None);
    let mut stored = manifest(idx(1), "first");
    stored.counts.chunks = 7;
    stored.permission_digest = "perm".into();
    r.put_manifest(&stored, draft("index.build", "1"))
        .expect("record");
    assert_eq!(
        r.manifest(&idx(1)).expect("read"),
        Some(stored),
        "every field comes back, not only the digest"
    );
}

fn deletion_marks_are_kept_once_and_removed(r: &dyn Registry) {
    r.put_manifest(&manifest(idx(1), "d1"), draft("index.build", "1"))
        .expect("record");
    let marked = r
        .mark_deleting(&idx(1), 1_000, draft("index.delete.marked", "1"))
        .expect("mark");
    assert!(marked.is_some(), "the first mark is audited");
    let again = r
        .mark_deleting(&idx(1), 2_000, draft("index.delete.marked", "1"))
        .expect("mark again");
    assert_eq!(again, None, "a second mark writes nothing");
    r.mark_deleting(&idx(2), 3_000, draft("index.delete.marked", "2"))
        .expect("mark another");
    let marks: Vec<(String, u64)> = r
        .deleting()
        .expect("marks")
        .into_iter()
        .map(|(id, at)| (id.to_string(), at))
        .collect();
    assert_eq!(
        marks,
        vec![(idx(1).to_string(), 1_000), (idx(2).to_string(), 3_000)],
        "the first mark's time is kept"
    );
    r.unmark_deleting(&idx(2), false, draft("index.delete.cancelled", "2"))
        .expect("call off");
    r.unmark_deleting(&idx(1), true, draft("index.delete", "1"))
        .expect("done");
    assert!(r.deleting().expect("marks").is_empty());
    assert_eq!(r.manifest(&idx(1)).expect("read"), None, "forgotten");
    let err = r
        .unmark_deleting(&idx(1), true, draft("index.delete", "1"))
        .expect_err("not marked");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let actions = actions(r);
    assert_eq!(
        actions,
        [
            "index.build",
            "index.delete.marked",
            "index.delete.marked",
            "index.delete.cancelled",
            "index.delete"
        ]
    );
    let rebuilt = r
        .put_manifest(&manifest(idx(1), "d2"), draft("index.build", "1"))
        .expect("record again");
    assert!(matches!(rebuilt, Published::Recorded(_)), "{rebuilt:?}");
    assert!(r.verify_audit().expect("verify").ok);
}

fn alias_heads_are_the_newest_revisions(r: &dyn Registry) {
    assert!(r.alias_heads().expect("heads").is_empty());
    change(r, "a", &AliasChange::Set(idx(1))).expect("a1");
    change(r, "a", &AliasChange::Set(idx(2))).expect("a2");
    change(r, "b", &AliasChange::Set(idx(3))).expect("b1");
    let heads: Vec<(String, u64)> = r
        .alias_heads()
        .expect("heads")
        .into_iter()
        .map(|(name, rev)| (name, rev.revision))
        .collect();
    assert_eq!(heads, vec![("a".to_owned(), 2), ("b".to_owned(), 1)]);
}

/// A sampled request of `alias` at `time_us`, for a backend's own tests too.
pub fn sample(alias: &str, time_us: u64, request_id: &str) -> SampleRecord {
    SampleRecord {
        request_id: request_id.into(),
        time: format!("t{time_us}"),
        time_us,
        alias: alias.into(),
        revision: 2,
        arm: "canary".into(),
        index_id: idx(1),
        intent: Some(Intent::new("billing").expect("an intent")),
        user: Some("dana".into()),
        groups: vec!["eng".into()],
        k: 5,
        mode: "hybrid".into(),
        timings_us: StepMicros {
            total: 900,
            ..StepMicros::default()
        },
        chunk_ids: vec!["a#0".into()],
        doc_ids: vec!["a".into()],
        query: SampledQuery::Blake3("00".repeat(32)),
    }
}

fn samples_are_selected_newest_first_and_pruned(r: &dyn Registry) {
    let stored = [
        sample("a", 30, "rq-3"),
        sample("a", 10, "rq-1"),
        sample("b", 20, "rq-2"),
        sample("a", 20, "rq-4"),
    ];
    r.put_samples(&stored).expect("samples");
    r.put_samples(&[]).expect("no samples");
    let ids = |q: SampleQuery| -> Vec<String> {
        r.samples(&q)
            .expect("read samples")
            .into_iter()
            .map(|s| s.request_id)
            .collect()
    };
    let all = SampleQuery {
        limit: 100,
        ..SampleQuery::default()
    };
    assert_eq!(ids(all.clone()), ["rq-1", "rq-2", "rq-4", "rq-3"]);
    let of_a = SampleQuery {
        alias: Some("a".into()),
        since_us: 15,
        limit: 100,
    };
    assert_eq!(ids(of_a.clone()), ["rq-4", "rq-3"]);
    assert_eq!(
        ids(SampleQuery { limit: 1, ..of_a }),
        ["rq-3"],
        "the newest"
    );
    assert_eq!(r.samples(&all).expect("read")[1], stored[2], "round trip");
    assert_eq!(r.prune_samples(20).expect("prune"), 1);
    assert_eq!(ids(all), ["rq-2", "rq-4", "rq-3"]);
    assert!(
        r.audit_events().expect("events").is_empty(),
        "samples are not audited"
    );
}

fn canary_report(alias: &str, created_us: u64, id: &str) -> CanaryReport {
    CanaryReport {
        report_id: id.into(),
        alias: alias.into(),
        revision: 2,
        primary: idx(1),
        candidate: idx(2),
        arm: "canary".into(),
        created: format!("t{created_us}"),
        created_us,
        actor: "conformance".into(),
        window_secs: 3600,
        considered: 3,
        not_replayable: 0,
        overall: Stratum::default(),
        per_intent: std::collections::BTreeMap::from([("hr".to_owned(), Stratum::default())]),
        ndcg_at_10: None,
        policy: Some("overlap<0.6".parse().expect("a policy")),
        breaches: vec!["intent hr: overlap 0.000 < 0.6".into()],
    }
}

fn canary_reports_are_audited_listed_and_pruned(r: &dyn Registry) {
    for (alias, at, id) in [("b", 5, "cnr-1"), ("a", 30, "cnr-2"), ("a", 10, "cnr-3")] {
        let event = r
            .put_canary_report(&canary_report(alias, at, id), draft("canary.report", alias))
            .expect("canary report");
        assert_eq!(event.action, "canary.report");
    }
    let ids = |alias: Option<&str>| -> Vec<String> {
        r.canary_reports(alias)
            .expect("reports")
            .into_iter()
            .map(|x| x.report_id)
            .collect()
    };
    assert_eq!(ids(None), ["cnr-1", "cnr-3", "cnr-2"], "oldest first");
    assert_eq!(ids(Some("a")), ["cnr-3", "cnr-2"]);
    assert_eq!(
        r.canary_reports(Some("a")).expect("reports")[0],
        canary_report("a", 10, "cnr-3"),
        "round trip"
    );
    assert_eq!(r.prune_canary_reports(10).expect("prune"), 1);
    assert_eq!(ids(None), ["cnr-3", "cnr-2"]);
    assert_eq!(r.audit_events().expect("events").len(), 3);
    assert!(r.verify_audit().expect("verify").ok);
}

fn feedback(alias: &str, time_us: u64, request_id: &str) -> FeedbackRecord {
    FeedbackRecord {
        request_id: request_id.into(),
        time: format!("t{time_us}"),
        time_us,
        alias: alias.into(),
        revision: 3,
        arm: "primary".into(),
        index_id: idx(1),
        intent: Some(Intent::new("hr").expect("an intent")),
        success: false,
        label: Some(FeedbackLabel::new("wrong-policy").expect("a label")),
        latency_us: 900,
        cpu_us: CpuMicros {
            total: 450,
            ..CpuMicros::default()
        },
    }
}

fn feedback_is_listed_per_alias_and_pruned(r: &dyn Registry) {
    let stored = [
        feedback("a", 20, "rq-2"),
        feedback("b", 10, "rq-3"),
        feedback("a", 10, "rq-1"),
    ];
    r.put_feedback(&stored).expect("feedback");
    r.put_feedback(&[]).expect("no feedback");
    let ids = |alias: &str, since: u64| -> Vec<String> {
        r.feedback(alias, since)
            .expect("read feedback")
            .into_iter()
            .map(|f| f.request_id)
            .collect()
    };
    assert_eq!(ids("a", 0), ["rq-1", "rq-2"]);
    assert_eq!(ids("a", 15), ["rq-2"]);
    assert_eq!(
        r.feedback("b", 0).expect("read")[0],
        stored[1],
        "round trip"
    );
    assert_eq!(r.prune_feedback(15).expect("prune"), 2);
    assert_eq!(ids("a", 0), ["rq-2"]);
    assert!(ids("b", 0).is_empty());
    assert!(r.audit_events().expect("events").is_empty(), "not audited");
}
