//! Evaluation and quality gates end to end over gRPC, on the handbook with the project's own
//! judgments (`corpora/handbook-eval`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use quire_testkit::server as support;

use std::path::{Path, PathBuf};

use quire_core::Reader;
use quire_index::Mode;
use quire_server::{EvalApi, EvalRequest, GateRequest, ReleaseApi};
use quire_store::{AliasChangeRequest, CorpusFormat};
use support::{TestServer, code, handbook};
use tonic::Code;

fn dataset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/handbook-eval")
}

/// Everyone who can read every handbook document.
pub(crate) fn everyone() -> Reader {
    Reader::new(
        None,
        [
            "all-staff",
            "eng",
            "hr",
            "security",
            "execs",
            "finance",
            "legal",
        ],
    )
    .unwrap()
}

fn request(mode: Mode) -> EvalRequest {
    EvalRequest {
        dataset: dataset(),
        split: "test".into(),
        mode,
        reader: everyone(),
        ignore_identical_ids: true,
    }
}

#[test]
fn the_eval_corpus_mirrors_the_handbook() {
    let corpus = std::fs::read_to_string(dataset().join("corpus.jsonl")).unwrap();
    let mut n = 0;
    for line in corpus.lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = doc["_id"].as_str().unwrap();
        let text = std::fs::read_to_string(handbook().join(id)).unwrap();
        assert_eq!(doc["text"].as_str().unwrap(), text, "{id} drifted");
        n += 1;
    }
    assert_eq!(n, 66);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_promotions_are_refused_without_a_passing_report_and_forcing_is_audited() {
    // Datasets are server paths: the server may read them only under an import root.
    let corpora = dataset().join("..");
    let server = TestServer::start_with_roots(&[&corpora]).await;
    let spec = "version = 1\n[chunking]\nstrategy = \"sentences\"\nmax_tokens = 48\n";
    let (admin, old, new) = support::two_indexes(&server, spec).await;
    let releaser = server.client(Some("t-releaser")).await;
    let reader = server.client(Some("t-reader")).await;

    // Evaluation: an alias resolves to its primary; the report is stored and listed.
    let report = admin
        .evaluate("handbook", request(Mode::Bm25))
        .await
        .unwrap();
    assert_eq!(report.index_id.to_string(), old);
    assert!(report.ndcg_at_10 > 0.8, "{}", report.ndcg_at_10);
    assert_eq!(report.report["per_query"].as_array().unwrap().len(), 16);
    let err = reader
        .evaluate("handbook", request(Mode::Bm25))
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        Code::PermissionDenied,
        "evaluating stores a report"
    );
    let listed = reader.reports(Some("handbook")).await.unwrap();
    assert_eq!(listed.len(), 1);
    let mut missing = request(Mode::Bm25);
    missing.dataset = dataset().join("nope");
    let err = admin.evaluate("handbook", missing).await.unwrap_err();
    // Refused like any path outside the roots: a refusal does not say what exists.
    assert_eq!(code(&err), Code::PermissionDenied);
    assert!(err.to_string().contains("nope"), "{err}");
    let mut outside = request(Mode::Bm25);
    outside.dataset = dataset().join("../../crates");
    let err = admin.evaluate("handbook", outside).await.unwrap_err();
    assert_eq!(code(&err), Code::PermissionDenied, "{err}");

    releaser
        .change_alias("prod", AliasChangeRequest::Set(old.clone()), "start", false)
        .await
        .unwrap();
    let gate = |min: f64| GateRequest {
        eval: request(Mode::Bm25),
        min_ndcg10: Some(min),
        max_regression: Some(1.0),
    };
    let gated = releaser
        .gate("prod", gate(0.3), "gate on judgments")
        .await
        .unwrap();
    assert_eq!(
        gated.state.policy.as_ref().unwrap().eval_spec,
        report.eval_spec
    );
    releaser
        .change_alias(
            "prod",
            AliasChangeRequest::Canary(new.clone(), 50.0),
            "try",
            false,
        )
        .await
        .unwrap();
    let promote = |c: &quire_server::Remote, force: bool| {
        let c = c.clone();
        async move {
            c.change_alias("prod", AliasChangeRequest::Promote, "ship", force)
                .await
        }
    };
    let err = promote(&releaser, false).await.unwrap_err();
    assert_eq!(code(&err), Code::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("no evaluation report"), "{err}");
    // A report under another mode does not count.
    admin.evaluate(&new, request(Mode::Vector)).await.unwrap();
    let err = promote(&releaser, false).await.unwrap_err();
    assert!(err.to_string().contains("no evaluation report"), "{err}");
    let candidate = admin.evaluate(&new, request(Mode::Bm25)).await.unwrap();
    // A gate the candidate cannot pass: refused; a releaser may not force; an admin may.
    releaser
        .gate("prod", gate(0.9999), "stricter")
        .await
        .unwrap();
    let err = promote(&releaser, false).await.unwrap_err();
    assert!(
        err.to_string().contains("below the gate's minimum"),
        "{err}"
    );
    let err = promote(&releaser, true).await.unwrap_err();
    assert_eq!(code(&err), Code::PermissionDenied);
    let forced = promote(&admin, true).await.unwrap();
    assert_eq!(forced.state.primary.to_string(), new);
    // Back, and a gate the candidate passes lets it through.
    releaser
        .change_alias("prod", AliasChangeRequest::Rollback(None), "undo", false)
        .await
        .unwrap();
    releaser
        .gate("prod", gate(0.3), "back to normal")
        .await
        .unwrap();
    releaser
        .change_alias(
            "prod",
            AliasChangeRequest::Canary(new.clone(), 50.0),
            "again",
            false,
        )
        .await
        .unwrap();
    let promoted = promote(&releaser, false).await.unwrap();
    assert_eq!(promoted.state.primary.to_string(), new);

    // Rebaselining onto another mode re-evaluates the primary.
    let rebased = releaser
        .rebaseline("prod", request(Mode::Hybrid), "gate on hybrid")
        .await
        .unwrap();
    assert_eq!(rebased.state.policy.as_ref().unwrap().mode, "hybrid");

    let log = admin.audit_log().await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"alias.promote.refused"), "{actions:?}");
    assert!(actions.contains(&"eval.report"));
    assert!(actions.contains(&"alias.rebaseline"));
    let forced_event = log
        .iter()
        .find(|e| e.action == "alias.promote" && e.evidence["gate"]["forced"] == true)
        .expect("the forced promotion is in the audit log");
    assert_eq!(forced_event.actor, "Admin");
    // Issue 14: the releaser's refused attempt to force is in the audit log too.
    let refused_force = log
        .iter()
        .find(|e| e.action == "auth.denied" && e.evidence["force"] == true)
        .expect("the refused --force is in the audit log");
    assert_eq!(refused_force.actor, "Releaser");
    assert_eq!(refused_force.target, "prod");
    let passed = log
        .iter()
        .rev()
        .find(|e| e.action == "alias.promote")
        .unwrap();
    assert_eq!(
        passed.evidence["gate"]["candidate_report"].as_str(),
        Some(candidate.report_id.as_str())
    );
    assert!(admin.audit_verify().await.unwrap().ok);
    server.stop().await;
}

/// Issue 16 over gRPC. Ignoring identical ids (BEIR's default, and now quire's) is a new eval
/// spec: a gate pinned with the evaluator from before (`ignore_identical_ids: false`, whose
/// hash is the old one) refuses a candidate evaluated the new way, naming `alias rebaseline`;
/// the old way stays available and passes; rebaselining moves the gate to the new spec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_pinned_before_identical_ids_asks_for_a_rebaseline() {
    let corpora = dataset().join("..");
    let server = TestServer::start_with_roots(&[&corpora]).await;
    let spec = "version = 1\n[chunking]\nstrategy = \"sentences\"\nmax_tokens = 48\n";
    let (admin, old, new) = support::two_indexes(&server, spec).await;
    let releaser = server.client(Some("t-releaser")).await;
    let before = EvalRequest {
        ignore_identical_ids: false,
        ..request(Mode::Bm25)
    };
    let change = |change: AliasChangeRequest, reason: &'static str| {
        let releaser = releaser.clone();
        async move { releaser.change_alias("prod", change, reason, false).await }
    };
    change(AliasChangeRequest::Set(old.clone()), "start")
        .await
        .unwrap();
    let gate = GateRequest {
        eval: before.clone(),
        min_ndcg10: Some(0.3),
        max_regression: Some(1.0),
    };
    let gated = releaser.gate("prod", gate, "pinned").await.unwrap();
    let pinned = gated.state.policy.unwrap().eval_spec;
    change(AliasChangeRequest::Canary(new.clone(), 50.0), "try")
        .await
        .unwrap();

    let beir = admin.evaluate(&new, request(Mode::Bm25)).await.unwrap();
    assert_ne!(beir.eval_spec, pinned);
    let err = change(AliasChangeRequest::Promote, "ship")
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("alias rebaseline"), "{err}");
    let old_way = admin.evaluate(&new, before).await.unwrap();
    assert_eq!(old_way.eval_spec, pinned);
    // No handbook query id is a document id: the same numbers under either spec.
    assert_eq!(old_way.ndcg_at_10, beir.ndcg_at_10);

    let rebased = releaser
        .rebaseline("prod", request(Mode::Bm25), "BEIR semantics")
        .await
        .unwrap();
    assert_eq!(rebased.state.policy.unwrap().eval_spec, beir.eval_spec);
    let promoted = change(AliasChangeRequest::Promote, "ship").await.unwrap();
    assert_eq!(promoted.state.primary.to_string(), new);
    server.stop().await;
}

/// Issue 16: fail-closed permissions, said out loud over gRPC. The judged handbook corpus in
/// BEIR form carries no ACLs, so built with the default spec (no `default_acl`) nobody may read
/// it: the build counts its unreadable documents, `Retrieve` says the reader may read nothing,
/// and `Evaluate` refuses (a report of zeros would look like a broken retriever), naming the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corpus_nobody_may_read_is_reported_not_evaluated() {
    use quire_server::QuireApi;
    let corpora = dataset().join("..");
    let server = TestServer::start_with_roots(&[&corpora]).await;
    let admin = server.client(Some("t-admin")).await;
    let snap = admin
        .import(&dataset().join("corpus.jsonl"), Some(CorpusFormat::Beir))
        .await
        .unwrap();
    let progress = std::sync::Arc::new(quire_index::NoProgress);
    let built = admin
        .build(snap.snapshot_id.as_str(), None, progress.clone())
        .await
        .unwrap();
    assert_eq!(built.unreadable_documents, 66);
    let index = built.manifest.index_id.to_string();
    let staff = || support::query("parental leave", &["all-staff"], Mode::Bm25, 3);
    let answer = admin.retrieve(&index, staff(), None).await.unwrap();
    assert!(answer.hits.is_empty() && answer.nothing_readable);
    // The handbook with its own ACLs: readable, and the flag is off.
    let answer = admin.retrieve("handbook", staff(), None).await.unwrap();
    assert!(!answer.hits.is_empty() && !answer.nothing_readable);

    let err = admin
        .evaluate(&index, request(Mode::Bm25))
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::FailedPrecondition, "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("may read no chunk of index {index}")),
        "{message}"
    );
    assert!(message.contains("`default_acl = [\"*\"]`"), "{message}");
    assert!(admin.reports(None).await.unwrap().is_empty());

    // Public by the spec: nothing unreadable, and the evaluation runs.
    let public = "version = 1\ndefault_acl = [\"*\"]\n";
    let built = admin
        .build(snap.snapshot_id.as_str(), Some(public), progress)
        .await
        .unwrap();
    assert_eq!(built.unreadable_documents, 0);
    let index = built.manifest.index_id.to_string();
    let report = admin.evaluate(&index, request(Mode::Bm25)).await.unwrap();
    assert!(report.ndcg_at_10 > 0.8, "{}", report.ndcg_at_10);
    server.stop().await;
}
