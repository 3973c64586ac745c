//! BM25 latency on a built index, one query thread, k 10: a reader who may read every chunk
//! (no filter runs), and allowed sets of 50%, 10% and 1% of the chunks, under each plan
//! (`cost`: the one the planner picks, the default; then block-max WAND and term at a time
//! forced); then the same queries through tantivy's own `TopDocs` collector on the same
//! segment.
//!
//! `cargo bench -p quire-benches --bench bm25 -- DIR [QUERIES.jsonl]`: `DIR` is an index
//! directory; queries default to SciFact's (`../shared/datasets/scifact/queries.jsonl`).

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Instant;

use quire_core::spec::Analyzer;
use quire_embed::Models;
use quire_index::ann::Allowed;
use quire_index::{Bm25Plan, Bm25Planner, OpenIndex};

const ROUNDS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(dir) = args.first() else {
        println!("usage: cargo bench -p quire-benches --bench bm25 -- INDEX_DIR [QUERIES.jsonl]");
        return;
    };
    let queries_file = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/datasets/scifact/queries.jsonl")
    });
    let text = std::fs::read_to_string(&queries_file).expect("queries");
    let queries: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let models = Models::from_dir(&workspace.join("models")).expect("models");
    let open = |planner| {
        OpenIndex::open(dir.as_ref(), &models)
            .expect("open the index")
            .with_bm25_planner(planner)
    };
    let index = open(Bm25Planner::Cost);
    let n = index.chunks().len();
    let term_at_a_time = queries
        .iter()
        .filter(|q| index.bm25_plan(q).expect("plan") == Bm25Plan::TermAtATime)
        .count();
    println!(
        "BM25, {} ({n} chunks), {} queries x {ROUNDS} rounds, k 10, one thread",
        index.manifest().index_id,
        queries.len()
    );
    println!(
        "the planner runs {term_at_a_time} of the {} queries term at a time",
        queries.len()
    );
    println!("| plan | readable chunks | p50 us | p99 us | mean hits |");
    println!("|---|---|---|---|---|");
    for (plan, planner) in [
        ("cost", Bm25Planner::Cost),
        ("WAND", Bm25Planner::Pruned),
        ("term at a time", Bm25Planner::TermAtATime),
    ] {
        let index = open(planner);
        for percent in [100u64, 50, 10, 1] {
            row(&index, plan, percent, &queries);
        }
    }
    tantivy_top_docs(dir.as_ref(), &queries);
}

/// One table row: `queries` x [`ROUNDS`] through `index` for a reader of `percent` of it.
fn row(index: &OpenIndex, plan: &str, percent: u64, queries: &[String]) {
    let n = index.chunks().len();
    // A fixed pseudo-random subset: chunk i is allowed when its hash lands in the percent.
    let allowed = (percent < 100).then(|| {
        Allowed::from_fn(n, |i| {
            u64::from(blake3::hash(&i.to_le_bytes()).as_bytes()[0]) * 100 / 256 < percent
        })
    });
    let mut times = Vec::new();
    let mut hits = 0usize;
    for _ in 0..ROUNDS {
        for q in queries {
            let started = Instant::now();
            let found = index.bm25_in(q, allowed.as_ref(), 10).expect("bm25");
            times.push(started.elapsed().as_secs_f64() * 1e6);
            hits += found.len();
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "| {plan} | {percent}% | {:.0} | {:.0} | {:.1} |",
        at(0.5),
        at(0.99),
        hits as f64 / times.len() as f64
    );
}

/// The same disjunctions through tantivy's own `TopDocs` collector on the same segment: the
/// floor quire's filtered top-k loop is measured against.
fn tantivy_top_docs(dir: &std::path::Path, queries: &[String]) {
    let mapped = tantivy::Index::open_in_dir(dir.join("bm25")).expect("bm25 dir");
    top_docs(&mapped, queries, "memory-mapped");
}

fn top_docs(index: &tantivy::Index, queries: &[String], how: &str) {
    use tantivy::collector::TopDocs;
    use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
    use tantivy::schema::IndexRecordOption;

    quire_index::bm25::register_analyzers(index).expect("analyzers");
    let field = index.schema().get_field("text").expect("text field");
    let searcher = index
        .reader_builder()
        .reload_policy(tantivy::ReloadPolicy::Manual)
        .try_into()
        .expect("reader")
        .searcher();
    let mut analyzer = quire_index::bm25::text_analyzer(Analyzer::English).expect("analyzer");
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        for q in queries {
            let started = Instant::now();
            let mut terms = std::collections::BTreeSet::new();
            let mut stream = analyzer.token_stream(q);
            while let Some(token) = stream.next() {
                terms.insert(token.text.clone());
            }
            let should: Vec<(Occur, Box<dyn Query>)> = terms
                .iter()
                .map(|t| {
                    let term = tantivy::Term::from_field_text(field, t);
                    let query = TermQuery::new(term, IndexRecordOption::WithFreqs);
                    (Occur::Should, Box::new(query) as Box<dyn Query>)
                })
                .collect();
            let top = searcher
                .search(
                    &BooleanQuery::new(should),
                    &TopDocs::with_limit(10).order_by_score(),
                )
                .expect("search");
            std::hint::black_box(top);
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!(
        "| tantivy TopDocs | same segment, {how} | {:.0} | {:.0} | - |",
        at(0.5),
        at(0.99)
    );
}
