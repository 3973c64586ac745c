use hnsw_rs::hnsw::Hnsw;
use proptest::prelude::*;

use super::*;
use crate::ann::{self, Vectors};
use crate::distance::DotDistance;

/// `n` L2-normalised `dim`-d vectors around `clusters` random centres (uniform in a unit cube
/// around 0), each coordinate moved by up to `noise / 2`; deterministic.
fn clustered(n: usize, dim: usize, clusters: usize, seed: u64, noise: f32) -> Vec<f32> {
    let mut state = seed;
    let mut uniform = move || {
        state = splitmix64(state);
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let centres: Vec<f32> = (0..clusters * dim).map(|_| uniform()).collect();
    let mut out = Vec::with_capacity(n * dim);
    for i in 0..n {
        let c = &centres[(i % clusters) * dim..][..dim];
        let mut v: Vec<f32> = c.iter().map(|x| x + noise * uniform()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= norm);
        out.extend(v);
    }
    out
}

fn build_in_pool(threads: usize, vectors: Vectors<'_>, params: HnswParams) -> FrozenGraph {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| build(vectors, params, |_| {}))
        .expect("build")
}

/// Degree bounds, no self-loops, no duplicates, upper-layer neighbours on their layer, and
/// (when `connected`) every node reachable from the entry point on layer 0.
fn check_invariants(graph: &FrozenGraph, m: usize, connected: bool) {
    let n = graph.len();
    assert_eq!(
        graph.layers.len(),
        graph
            .levels
            .iter()
            .map(|&l| l as usize + 1)
            .max()
            .unwrap_or(0)
    );
    if n == 0 {
        return;
    }
    let top = graph.layers.len() - 1;
    assert_eq!(graph.levels[graph.entry_point as usize] as usize, top);
    assert_eq!(
        graph.levels.iter().position(|&l| l as usize == top),
        Some(graph.entry_point as usize),
        "the entry point is the first node on the top layer"
    );
    for (l, layer) in graph.layers.iter().enumerate() {
        let rows = if l == 0 { n } else { layer.nodes.len() };
        let cap = if l == 0 { 2 * m } else { m };
        for pos in 0..rows {
            let id = if l == 0 { pos as u32 } else { layer.nodes[pos] };
            let list = layer.neighbours_at(pos);
            assert!(
                list.len() <= cap,
                "layer {l} node {id}: degree {}",
                list.len()
            );
            assert!(!list.contains(&id), "layer {l} node {id}: self-loop");
            let mut sorted = list.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), list.len(), "layer {l} node {id}: duplicate");
            assert!(
                list.iter()
                    .all(|&nb| graph.levels[nb as usize] as usize >= l)
            );
        }
    }
    if connected {
        let mut seen = vec![false; n];
        let mut stack = vec![graph.entry_point];
        seen[graph.entry_point as usize] = true;
        while let Some(id) = stack.pop() {
            for &nb in graph.layers[0].neighbours_at(id as usize) {
                if !std::mem::replace(&mut seen[nb as usize], true) {
                    stack.push(nb);
                }
            }
        }
        let unreached = seen.iter().filter(|s| !**s).count();
        assert_eq!(unreached, 0, "{unreached} nodes unreachable on layer 0");
    }
}

#[test]
fn output_is_byte_identical_for_1_2_and_4_threads() {
    let (n, dim) = (3000, 32);
    let flat = clustered(n, dim, 20, 7, 0.35);
    let vectors = Vectors::new(&flat, dim);
    let params = HnswParams {
        m: 8,
        ef_construction: 64,
    };
    let one = build_in_pool(1, vectors, params).to_bytes();
    for threads in [2, 4, 1] {
        assert!(
            build_in_pool(threads, vectors, params).to_bytes() == one,
            "{threads} threads built another graph"
        );
    }
    let graph = FrozenGraph::from_bytes(&one).expect("parse");
    check_invariants(&graph, 8, true);
}

#[test]
fn levels_follow_the_hnsw_distribution_and_batches_cover_every_node() {
    let m = 16;
    let n = 200_000u32;
    let at_least = |l: u8| (0..n).filter(|&i| level_of(i, m) >= l).count() as f64;
    for (l, expected) in [(1u8, n as f64 / 16.0), (2, n as f64 / 256.0)] {
        let got = at_least(l);
        assert!(
            (got / expected - 1.0).abs() < 0.1,
            "level {l}: {got} vs {expected}"
        );
    }
    assert_eq!(level_of(12345, m), level_of(12345, m));
    let mut progress = Vec::new();
    let flat = clustered(250, 8, 5, 1, 0.35);
    build(
        Vectors::new(&flat, 8),
        HnswParams {
            m: 4,
            ef_construction: 8,
        },
        |k| progress.push(k),
    )
    .expect("build");
    assert_eq!(progress.iter().sum::<u64>(), 250);
    assert_eq!(
        &progress[..4],
        &[1, 1, 2, 2],
        "prefix doubling capped at 1% of 250"
    );
}

#[test]
fn bad_parameters_are_refused() {
    let flat = clustered(10, 8, 2, 1, 0.35);
    let err = build(
        Vectors::new(&flat, 8),
        HnswParams {
            m: 8,
            ef_construction: 4,
        },
        |_| {},
    );
    assert!(err.is_err_and(|e| e.to_string().contains("ef_construction")));
    let empty = build(
        Vectors::new(&[], 8),
        HnswParams {
            m: 8,
            ef_construction: 8,
        },
        |_| {},
    )
    .expect("empty");
    assert!(empty.is_empty() && empty.layers.is_empty());
    assert_eq!(
        FrozenGraph::from_bytes(&empty.to_bytes()).expect("parse"),
        empty
    );
}

fn recall_at_10(graph: &FrozenGraph, vectors: Vectors<'_>, queries: &[f32], ef: usize) -> f64 {
    let dim = vectors.row(0).len();
    let (mut found, mut wanted) = (0, 0);
    for q in queries.chunks_exact(dim) {
        let truth = ann::exact(vectors, q, None, 10);
        let got = ann::search(graph, vectors, q, 10, ef, None);
        found += got
            .iter()
            .filter(|g| truth.iter().any(|t| t.0 == g.0))
            .count();
        wanted += truth.len();
    }
    found as f64 / wanted as f64
}

/// hnsw_rs stays the reference: on the same vectors and parameters, searched by the same
/// frozen-graph search, quire's graph must find at least as many true neighbours at every ef.
#[test]
fn recall_is_at_least_hnsw_rs_at_equal_ef() {
    let (n, dim, m, efc) = (5000, 64, 16, 100);
    // Held-out points of the same distribution are the queries.
    let all = clustered(n + 200, dim, 50, 11, 0.6);
    let (flat, queries) = all.split_at(n * dim);
    let vectors = Vectors::new(flat, dim);
    let ours = build(
        vectors,
        HnswParams {
            m,
            ef_construction: efc,
        },
        |_| {},
    )
    .expect("build");
    check_invariants(&ours, m, true);
    let hnsw = Hnsw::<f32, DotDistance>::new(m, n, 16, efc, DotDistance);
    for i in 0..n {
        hnsw.insert_slice((vectors.row(i as u32), i));
    }
    let reference = FrozenGraph::from_hnsw(&hnsw, n).expect("export");
    for ef in [10, 16, 32, 64] {
        let (q, r) = (
            recall_at_10(&ours, vectors, queries, ef),
            recall_at_10(&reference, vectors, queries, ef),
        );
        assert!(q >= r, "ef {ef}: quire recall {q:.3} < hnsw_rs {r:.3}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any small input, duplicates and all: 1 and 3 threads agree byte for byte, and the
    /// structural invariants hold.
    #[test]
    fn small_inputs_build_identically_on_any_thread_count(
        raw in proptest::collection::vec(-4i8..=4, 0..8 * 160),
        m in 2usize..8,
        extra in 0usize..20,
    ) {
        let dim = 8;
        let mut flat: Vec<f32> = raw[..raw.len() / dim * dim].iter().map(|&x| f32::from(x)).collect();
        for row in flat.chunks_exact_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|x| *x /= norm);
            }
        }
        let vectors = Vectors::new(&flat, dim);
        let params = HnswParams { m, ef_construction: m + extra };
        let one = build_in_pool(1, vectors, params);
        let three = build_in_pool(3, vectors, params);
        prop_assert!(one.to_bytes() == three.to_bytes());
        check_invariants(&one, m, false);
    }
}
