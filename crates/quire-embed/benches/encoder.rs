//! The MiniLM forward pass alone, for quick A/B runs while working on the kernels (the full
//! side-by-side numbers are `cargo bench -p quire-benches --bench models -- speed` and
//! `benches/embed_compare.py`).
//!
//! ```sh
//! scripts/fetch-model
//! cargo bench -p quire-embed --bench encoder -- [fp32|int8] [TEXTS] [avx512|avx2-fma|scalar] \
//!     [threads=N] [batch=B]
//! ```
//!
//! Embeds the first TEXTS (default 64) SciFact abstracts (`title + " " + text`) on N threads
//! (default 1) in batches of B (default 16) texts, as rayon splits them; then 100 test queries
//! one at a time (each in a pool of two threads, as a server with an idle core embeds a query),
//! and prints texts/s, the process's CPU time per text (so that idle threads and contention can
//! be told apart), query p50 and a blake3 of all the vectors, which must not change unless the
//! arithmetic does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use quire_core::spec::Precision;
use quire_embed::{BertEmbedder, Embedder, KernelPath};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (model_dir, data) = (
        root.join("models/all-minilm-l6-v2"),
        root.join("../shared/datasets/scifact"),
    );
    if !model_dir.exists() || !data.exists() {
        println!("skipping: models/all-minilm-l6-v2 or ../shared/datasets/scifact is absent");
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let precision = if args.iter().any(|a| a == "int8") {
        Precision::Int8
    } else {
        Precision::Fp32
    };
    let count = args.iter().find_map(|a| a.parse().ok()).unwrap_or(64usize);
    let mut model = BertEmbedder::load_at("all-minilm-l6-v2", &model_dir, precision).unwrap();
    if let Some(path) = args.iter().find_map(|a| a.parse::<KernelPath>().ok()) {
        model = model.with_kernel(path).unwrap();
    }
    let texts: Vec<String> = std::fs::read_to_string(data.join("corpus.jsonl"))
        .unwrap()
        .lines()
        .take(count)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {}",
                v["title"].as_str().unwrap_or_default(),
                v["text"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let queries: Vec<String> = std::fs::read_to_string(data.join("queries.jsonl"))
        .unwrap()
        .lines()
        .take(100)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    let mut hash = blake3::Hasher::new();
    model.embed_batch(&[texts[0].as_str()]).unwrap();
    let threads: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("threads=")?.parse().ok())
        .unwrap_or(1);
    let texts_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let batch: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("batch=")?.parse().ok())
        .unwrap_or(16);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    // In batches of 16 by default, as `cargo bench --bench models -- speed` runs them.
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let rows: Vec<f32> = texts_pool.install(|| {
        use rayon::prelude::*;
        refs.par_chunks(batch)
            .flat_map_iter(|batch| model.embed_batch(batch).unwrap().into_iter())
            .collect()
    });
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    rows.iter().for_each(|x| {
        hash.update(&x.to_le_bytes());
    });
    // Queries as a server with an idle core embeds them: each step split over a pool of two.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let mut times: Vec<f64> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            let v = pool.install(|| model.embed_query(q)).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            v.iter().for_each(|x| {
                hash.update(&x.to_le_bytes());
            });
            ms
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "{} {} {count} texts, {threads} thread(s): {:.2} texts/s ({:.1} ms CPU a text), query p50 {:.2} ms, vectors {}",
        precision.as_str(),
        model.kernel(),
        count as f64 / secs,
        cpu * 1e3 / count as f64,
        times[times.len() / 2],
        &hash.finalize().to_hex()[..16]
    );
}

/// CPU seconds this process has used (user + system), from `/proc/self/stat`; 0 elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
