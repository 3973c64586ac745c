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

/// Issue 16: a BEIR corpus carries no ACLs, so built with the default spec (no `default_acl`)
/// nobody may read it. Each command says so: `build` warns with the count, `query` warns that
/// the reader may read nothing (stdout stays the answer), and `eval` refuses, naming the fix.
#[test]
fn unreadable_corpora_are_named_by_build_query_and_eval() {
    let data = TempDir::new().unwrap();
    let dataset = workspace().join("corpora/handbook-eval");
    let corpus = dataset.join("corpus.jsonl");
    let corpus = corpus.to_str().unwrap();
    let built = quire(
        data.path(),
        &["--json", "build", corpus, "--format", "beir"],
    )
    .ok();
    assert_eq!(built.json()["unreadable_documents"], 66);
    assert!(
        built.stderr.contains(
            "warning: 66 of 66 documents can be read by nobody: they carry no ACL (or an empty \
             one) and the spec sets no `default_acl`"
        ),
        "{}",
        built.stderr
    );
    let id = built.json()["index_id"].as_str().unwrap().to_owned();

    let query = quire(
        data.path(),
        &["query", &id, "parental leave", "--group", "all-staff"],
    )
    .ok();
    assert!(query.stdout.starts_with("no hits\n"), "{}", query.stdout);
    assert!(
        query.stderr.contains(&format!(
            "warning: reader group:all-staff may read no chunk of index {id}"
        )),
        "{}",
        query.stderr
    );

    let eval = |id: &str, extra: &[&str]| {
        let mut args = vec!["eval", id, "--dataset", dataset.to_str().unwrap()];
        args.extend(["--mode", "bm25"]);
        args.extend(extra);
        quire(data.path(), &args)
    };
    let refused = eval(&id, &[]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.starts_with(&format!(
            "error: reader anonymous may read no chunk of index {id}, so every query would score 0"
        )),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("`default_acl = [\"*\"]`"),
        "{}",
        refused.stderr
    );

    // Public by the spec: no warning, and the query finds the policy.
    let spec = workspace().join("specs/public.toml");
    let built = quire(
        data.path(),
        &[
            "build",
            corpus,
            "--format",
            "beir",
            "--spec",
            spec.to_str().unwrap(),
        ],
    )
    .ok();
    assert!(!built.stderr.contains("warning"), "{}", built.stderr);
    let id = built.stdout.lines().next().unwrap().to_owned();
    let query = quire(data.path(), &["query", &id, "parental leave"]).ok();
    assert!(!query.stdout.starts_with("no hits"), "{}", query.stdout);
    assert!(!query.stderr.contains("warning"), "{}", query.stderr);

    // BEIR's identical-id rule is part of the eval spec; `false` is the evaluator before it.
    let text = eval(&id, &[]).ok();
    assert!(
        text.stdout.contains("(test split, identical ids ignored)"),
        "{}",
        text.stdout
    );
    // `--json` is global: it may follow the subcommand.
    let json = |extra: &[&str]| {
        let mut args = vec!["--json"];
        args.extend(extra);
        eval(&id, &args).ok().json()
    };
    let beir = json(&[]);
    let before = json(&["--ignore-identical-ids", "false"]);
    assert_ne!(beir["eval_spec"], before["eval_spec"]);
    assert_eq!(beir["ndcg_at_10"], before["ndcg_at_10"]);
    let explicit = json(&["--ignore-identical-ids", "true"]);
    assert_eq!(explicit["eval_spec"], beir["eval_spec"]);
}
