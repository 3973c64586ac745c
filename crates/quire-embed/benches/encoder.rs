//! The MiniLM forward pass alone, for quick A/B runs while working on the kernels (the full
//! side-by-side numbers are `cargo bench -p quire-benches --bench models -- speed` and
//! `benches/embed_compare.py`).
//!
//! ```sh
//! scripts/fetch-model
//! cargo bench -p quire-embed --bench encoder -- [fp32|int8] [TEXTS] [avx512|avx2-fma|scalar]
//! ```
//!
//! Embeds the first TEXTS (default 64) SciFact abstracts (`title + " " + text`) on one thread
//! in batches of 16,
//! then 100 test queries one at a time (each in a pool of two threads, as a server with an idle
//! core embeds a query), and prints texts/s, query p50 and a blake3 of all the
//! vectors, which must not change unless the arithmetic does.

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
    let started = Instant::now();
    // In batches of 16, as `cargo bench --bench models -- speed` runs them.
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for batch in refs.chunks(16) {
        let v = model.embed_batch(batch).unwrap();
        v.iter().for_each(|x| {
            hash.update(&x.to_le_bytes());
        });
    }
    let secs = started.elapsed().as_secs_f64();
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
        "{} {} {count} texts {:.2} texts/s, query p50 {:.2} ms, vectors {}",
        precision.as_str(),
        model.kernel(),
        count as f64 / secs,
        times[times.len() / 2],
        &hash.finalize().to_hex()[..16]
    );
}
