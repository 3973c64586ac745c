//! The costs behind the vector plan (`quire_index::plan`): for readable shares from 100% to 1%,
//! the exact scan of the readable rows against graph walks at ef 64 to 400, each walk also
//! expressed in exact-scan rows (its time over the scan's time per row), with recall@10.
//!
//! ```text
//! cargo bench -p quire-benches --bench plan_probe -- INDEX_DIR [QUERY_VECTORS.f32]
//! ```
//!
//! Query vectors default to 200 rows of the index itself; `benches/peers.rs` and
//! `benches/retrieval.rs` write real ones (`query_vectors.f32`, `queries.f32`).

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::time::Instant;

use quire_embed::Models;
use quire_index::OpenIndex;
use quire_index::ann::{self, Allowed};

const QUERIES: usize = 200;

fn read_vectors(path: &str, dim: usize) -> Vec<Vec<f32>> {
    std::fs::read(path)
        .expect("query vectors")
        .chunks_exact(dim * 4)
        .take(QUERIES)
        .map(|row| {
            row.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(dir) = args.first() else {
        println!(
            "usage: cargo bench -p quire-benches --bench plan_probe -- INDEX_DIR [QUERY_VECTORS.f32]"
        );
        return;
    };
    let workspace = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let models = Models::from_dir(&workspace.join("models")).expect("models");
    let index = OpenIndex::open(dir.as_ref(), &models).expect("open");
    let n = index.chunks().len();
    let vectors = index.vectors();
    let dim = index.manifest().embedding.dim as usize;
    let queries = match args.get(1) {
        Some(path) => read_vectors(path, dim),
        None => (0..QUERIES)
            .map(|i| vectors.row((i * 7919 % n) as u32).to_vec())
            .collect(),
    };
    let per_query = |started: Instant| started.elapsed().as_secs_f64() * 1e6 / queries.len() as f64;
    println!(
        "{n} chunks x {dim}, {} queries, k 10, one thread",
        queries.len()
    );
    println!("| readable | exact us (ns/row) | walks: ef: us, rows, recall@10 |");
    println!("|---|---|---|");
    for percent in [100u64, 50, 30, 10, 5, 1] {
        let allowed = Allowed::from_fn(n, |i| {
            percent == 100
                || u64::from(blake3::hash(&i.to_le_bytes()).as_bytes()[0]) * 100 / 256 < percent
        });
        let filter = (percent < 100).then_some(&allowed);
        let started = Instant::now();
        let truth: Vec<_> = queries
            .iter()
            .map(|q| ann::exact(vectors, q, filter, 10))
            .collect();
        let exact_us = per_query(started);
        let row_ns = exact_us * 1000.0 / allowed.count() as f64;
        let mut walks = Vec::new();
        for ef in [64usize, 100, 200, 256, 400] {
            let started = Instant::now();
            let got: Vec<_> = queries
                .iter()
                .map(|q| ann::search(index.graph(), vectors, q, 10, ef, filter))
                .collect();
            let us = per_query(started);
            let found: usize = got
                .iter()
                .zip(&truth)
                .map(|(g, t)| g.iter().filter(|x| t.iter().any(|y| y.0 == x.0)).count())
                .sum();
            let recall = found as f64 / (10 * queries.len()) as f64;
            walks.push(format!(
                "{ef}: {us:.0}, {:.0}, {recall:.3}",
                us * 1000.0 / row_ns
            ));
        }
        println!(
            "| {percent}% ({}) | {exact_us:.0} ({row_ns:.0}) | {} |",
            allowed.count(),
            walks.join("; ")
        );
    }
}
