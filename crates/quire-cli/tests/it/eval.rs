//! `quire eval` from the command line, on SciFact (skipped when the dataset is absent).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{quire, scifact, workspace};
use tempfile::TempDir;

#[test]
fn scifact_bm25_reaches_the_reference_ndcg() {
    let Some(dir) = scifact() else {
        return;
    };
    let data = TempDir::new().unwrap();
    let spec = workspace().join("specs/public.toml");
    let corpus = dir.join("corpus.jsonl");
    let built = quire(
        data.path(),
        &[
            "--json",
            "build",
            corpus.to_str().unwrap(),
            "--format",
            "beir",
            "--spec",
            spec.to_str().unwrap(),
        ],
    )
    .ok()
    .json();
    let id = built["index_id"].as_str().unwrap().to_owned();
    let report = quire(
        data.path(),
        &[
            "--json",
            "eval",
            &id,
            "--dataset",
            dir.to_str().unwrap(),
            "--mode",
            "bm25",
        ],
    )
    .ok()
    .json();
    for field in [
        "ndcg_at_10",
        "recall_at_10",
        "recall_at_100",
        "mrr_at_10",
        "index_id",
        "eval_spec",
    ] {
        assert!(!report[field].is_null(), "--json lacks {field}: {report}");
    }
    assert_eq!(report["index_id"], id);
    let ndcg = report["ndcg_at_10"].as_f64().unwrap();
    eprintln!("scifact bm25 via `quire eval`: nDCG@10 {ndcg:.4}");
    assert!(ndcg >= 0.68, "nDCG@10 {ndcg:.4} is below 0.68");
    let listed = quire(data.path(), &["--json", "eval", "list", &id])
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["eval_spec"], report["eval_spec"]);
}
