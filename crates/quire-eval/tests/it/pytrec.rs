//! quire's metrics against pytrec_eval, trec_eval's own code called as BEIR calls it (issue 16).
//!
//! The fixture (`tests/fixtures/pytrec`: graded judgments, zero-only judgments, an identical
//! id first, one judged relevant, one ahead of a relevant document at rank 101, a judged query
//! with no run) is checked against values pytrec_eval computed, checked in below, so the check
//! needs no Python:
//!
//! ```sh
//! python benches/pytrec_compare.py --run crates/quire-eval/tests/fixtures/pytrec/run.trec \
//!     --qrels crates/quire-eval/tests/fixtures/pytrec/qrels.tsv --per-query [--keep-identical-ids]
//! ```
//!
//! The SciFact check runs that script on quire's own run files and reports, all three modes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use quire_core::Reader;
use quire_eval::runner::EVALUATOR_VERSION;
use quire_eval::{Dataset, EvalReport, EvalSpec, dataset, evaluate_with};
use quire_index::{Mode, Query};
use tempfile::TempDir;

/// pytrec_eval per query: nDCG@10, recall@10, recall@100, MRR@10 (identical ids ignored).
const IGNORED: [(&str, [f64; 4]); 8] = [
    ("q1", [0.484128, 1.0, 1.0, 0.333333]),
    ("q2", [0.630930, 1.0, 1.0, 0.5]),
    ("q3", [0.0, 0.0, 1.0, 0.0]),
    ("q4", [0.0, 0.0, 0.0, 0.0]),
    ("q5", [0.727330, 0.5, 1.0, 1.0]),
    ("q6", [0.0, 0.0, 0.0, 0.0]),
    ("q7", [0.760188, 0.5, 0.5, 1.0]),
    ("q8", [0.060704, 0.333333, 1.0, 0.1]),
];
/// The same with `--keep-identical-ids`: only q2, q3 and q7 change.
const KEPT: [(&str, [f64; 4]); 8] = [
    ("q1", [0.484128, 1.0, 1.0, 0.333333]),
    ("q2", [0.5, 1.0, 1.0, 0.333333]),
    ("q3", [0.0, 0.0, 0.0, 0.0]),
    ("q4", [0.0, 0.0, 0.0, 0.0]),
    ("q5", [0.727330, 0.5, 1.0, 1.0]),
    ("q6", [0.0, 0.0, 0.0, 0.0]),
    ("q7", [0.950234, 1.0, 1.0, 1.0]),
    ("q8", [0.060704, 0.333333, 1.0, 0.1]),
];
/// The script's means, to four decimals: (ignored, kept).
const MEANS: [[&str; 4]; 2] = [
    ["0.3329", "0.4167", "0.6875", "0.3667"],
    ["0.3403", "0.4792", "0.6250", "0.3458"],
];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytrec")
}

/// A TREC run file: query id -> document ids in rank order.
fn read_run(path: &Path) -> BTreeMap<String, Vec<String>> {
    let mut ranked: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let rank = f[3].parse().unwrap();
        ranked
            .entry(f[0].into())
            .or_default()
            .push((rank, f[2].into()));
    }
    ranked
        .into_iter()
        .map(|(q, mut docs)| {
            docs.sort();
            (q, docs.into_iter().map(|(_, d)| d).collect())
        })
        .collect()
}

fn as_array(m: &quire_eval::Metrics) -> [f64; 4] {
    [m.ndcg_at_10, m.recall_at_10, m.recall_at_100, m.mrr_at_10]
}

#[test]
fn fixture_metrics_equal_pytrec_eval_to_four_decimals() {
    let qrels = dataset::read_qrels(&fixture().join("qrels.tsv")).unwrap();
    let run = read_run(&fixture().join("run.trec"));
    // Each query's text is its id, so the retriever can answer from the run.
    let data = Dataset {
        queries: qrels.keys().map(|q| (q.clone(), q.clone())).collect(),
        qrels,
    };
    for (ignore, want, means) in [(true, IGNORED, MEANS[0]), (false, KEPT, MEANS[1])] {
        let spec = EvalSpec {
            split: "fixture".into(),
            files: BTreeMap::new(),
            metrics: Vec::new(),
            evaluator: EVALUATOR_VERSION.into(),
            ignore_identical_ids: ignore,
        };
        let report = evaluate_with("fixture", &spec, &data, |q| {
            Ok::<_, String>(run.get(q).cloned().unwrap_or_default())
        })
        .unwrap();
        for ((id, theirs), ours) in want.iter().zip(&report.per_query) {
            assert_eq!(*id, ours.query_id);
            for (a, b) in as_array(&ours.metrics).iter().zip(theirs) {
                assert!((a - b).abs() < 5e-5, "{id} (ignore {ignore}): {a} vs {b}");
            }
        }
        let ours = as_array(&report.metrics).map(|m| format!("{m:.4}"));
        assert_eq!(ours, means, "ignore {ignore}");
    }
}

/// Write `report`'s run as TREC lines (rank order, before identical-id removal) and the report
/// as JSON, then have the script score the run with pytrec_eval and compare.
fn check_with_pytrec(python: &Path, dir: &Path, qrels: &Path, report: &EvalReport, run: &str) {
    let name = &report.split;
    let run_path = dir.join(format!("{name}.trec"));
    let report_path = dir.join(format!("{name}.json"));
    std::fs::write(&run_path, run).unwrap();
    std::fs::write(&report_path, serde_json::to_vec(report).unwrap()).unwrap();
    let script = quire_testkit::workspace().join("benches/pytrec_compare.py");
    let out = Command::new(python)
        .arg(script)
        .arg("--run")
        .arg(&run_path)
        .arg("--qrels")
        .arg(qrels)
        .arg("--quire")
        .arg(&report_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{name}:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "quire and pytrec_eval disagree");
    assert!(stdout.contains("agree to four decimals"), "{stdout}");
}

#[test]
fn scifact_metrics_equal_pytrec_eval_on_quire_run_files() {
    let Some(dir) = quire_testkit::scifact() else {
        return;
    };
    let Some(python) = quire_testkit::pytrec_python() else {
        return;
    };
    let tmp = TempDir::new().unwrap();
    let index = crate::scifact::public_index(&dir, &tmp.path().join("data"));
    let data = dataset::load(&dir, "test").unwrap();
    let eval_spec = EvalSpec::for_dataset(&dir, "test").unwrap();
    // The retriever sees query text; the run file needs the query's id.
    let ids: BTreeMap<&str, &str> = data
        .queries
        .iter()
        .map(|(id, text)| (text.as_str(), id.as_str()))
        .collect();
    assert_eq!(ids.len(), data.queries.len(), "two queries share a text");
    for mode in [Mode::Bm25, Mode::Vector, Mode::Hybrid] {
        let mut run = String::new();
        let mut report = evaluate_with(
            index.manifest().index_id.as_str(),
            &eval_spec,
            &data,
            |text| {
                let q = Query {
                    text: text.into(),
                    reader: Reader::new(None, [] as [&str; 0]).unwrap(),
                    k: eval_spec.retrieval_depth(),
                    mode,
                    fusion: None,
                    candidates: None,
                };
                let hits = index.search_documents(&q)?.hits;
                let query_id = ids[text];
                for (rank, h) in hits.iter().enumerate() {
                    let line = format!("{query_id} Q0 {} {} {} quire", h.doc_id, rank + 1, h.score);
                    writeln!(run, "{line}").unwrap();
                }
                Ok::<_, quire_index::IndexError>(hits.into_iter().map(|h| h.doc_id).collect())
            },
        )
        .unwrap();
        // The split names the files the check writes.
        report.split = format!("test-{}", mode.as_str());
        check_with_pytrec(
            &python,
            tmp.path(),
            &dir.join("qrels/test.tsv"),
            &report,
            &run,
        );
    }
}
