//! Graph recall on real embeddings: the first 600 SciFact documents embedded by
//! all-MiniLM-L6-v2 (`specs/minilm-public.toml`), SciFact's test queries, the graph walk and
//! the plans the cost model picks against the exact scan (a subset keeps CI's embedding time
//! to about a minute; `benches/peers.rs` measures the full corpus). Skips, saying so, when `../shared` or the model is
//! absent (and fails under `CI=true`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use quire_core::{BuildSpec, Document, SnapshotId};
use quire_embed::Models;
use quire_index::ann::{self, Allowed};
use quire_index::{BuildRequest, NoProgress, OpenIndex, Planner, VectorPlan, build_index};
use serde_json::Value;

const DOCS: usize = 600;
const K: usize = 10;

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn corpus(dir: &Path) -> Vec<Document> {
    let mut docs: Vec<Document> = lines(&dir.join("corpus.jsonl"))
        .into_iter()
        .take(DOCS)
        .map(|v| Document {
            id: v["_id"].as_str().unwrap().to_owned(),
            title: v["title"].as_str().map(str::to_owned),
            metadata: Default::default(),
            acl: None,
            updated_at: None,
            text: v["text"].as_str().unwrap().to_owned(),
        })
        .collect();
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    docs
}

fn test_queries(dir: &Path) -> Vec<String> {
    let judged: BTreeSet<String> = std::fs::read_to_string(dir.join("qrels/test.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    lines(&dir.join("queries.jsonl"))
        .into_iter()
        .filter(|v| judged.contains(v["_id"].as_str().unwrap()))
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect()
}

fn build(dir: &Path, out: &Path) -> OpenIndex {
    let docs = corpus(dir);
    let spec_path = quire_testkit::workspace().join("specs/minilm-public.toml");
    let spec =
        BuildSpec::from_toml(&std::fs::read_to_string(&spec_path).unwrap(), "minilm").unwrap();
    let models = Models::from_dir(&quire_testkit::workspace().join("models")).unwrap();
    let embedder = models.resolve(&spec.embedding).unwrap();
    let snapshot = SnapshotId::from_hash(blake3::hash(b"scifact-600"));
    let req = BuildRequest {
        snapshot_id: &snapshot,
        documents: &docs,
        spec: &spec,
        embedder: embedder.as_ref(),
        imported_at: "2026-01-01T00:00:00Z",
        cache: None,
        donors: &[],
    };
    let index_dir = out.join(req.index_id().as_str());
    build_index(&req, &index_dir, &NoProgress).unwrap();
    OpenIndex::open(&index_dir, &models).unwrap()
}

/// Share of the exact top `K` that `got` found, over all queries.
fn recall(index: &OpenIndex, queries: &[Vec<f32>], allowed: &Allowed) -> f64 {
    let filter = (allowed.count() < index.chunks().len()).then_some(allowed);
    let (mut found, mut total) = (0, 0);
    for q in queries {
        let truth = ann::exact(index.vectors(), q, filter, K);
        let got = index.vector(q, allowed, K);
        assert!(got.iter().all(|(i, _)| allowed.contains(*i)));
        found += got
            .iter()
            .filter(|g| truth.iter().any(|t| t.0 == g.0))
            .count();
        total += truth.len();
    }
    found as f64 / total as f64
}

#[test]
fn scifact_minilm_graph_walk_and_planned_searches_keep_recall() {
    let Some(dir) = quire_testkit::scifact() else {
        return;
    };
    let Some(_) = quire_testkit::minilm() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let index = build(&dir, tmp.path()).with_planner(Planner::Walk);
    let queries: Vec<Vec<f32>> = test_queries(&dir)
        .iter()
        .map(|t| index.embed(t).unwrap())
        .collect();
    assert_eq!(queries.len(), 300);
    let n = index.chunks().len();
    let everyone = Arc::new(Allowed::from_fn(n, |_| true));
    // Unfiltered, the walk at the spec's ef finds more than 99% of the exact top 10.
    let ef = index.manifest().spec.hnsw.ef_search as usize;
    assert_eq!(index.vector_plan(&everyone, K), VectorPlan::Walk { ef });
    let unfiltered = recall(&index, &queries, &everyone);
    assert!(unfiltered >= 0.99, "unfiltered recall@10 {unfiltered:.4}");
    let index = index.with_planner(Planner::Cost);
    // Filtered readers: whatever the plan, recall stays above 0.95 and nothing unreadable
    // comes back.
    for percent in [50u64, 30, 10, 1] {
        let allowed = Allowed::from_fn(n, |i| {
            u64::from(blake3::hash(&i.to_le_bytes()).as_bytes()[0]) * 100 / 256 < percent
        });
        let got = recall(&index, &queries, &allowed);
        let plan = index.vector_plan(&allowed, K);
        assert!(
            got >= 0.95,
            "{percent}% readable, {plan}: recall@10 {got:.4}"
        );
    }
}
