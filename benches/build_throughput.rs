//! Build throughput: synthetic corpora of 10k and 100k chunks of ~200 words, built with the
//! default spec. Prints chunks/s overall and per stage, and the peak RSS of each build (each
//! size runs in its own child process so the peak is its own).
//!
//! `cargo bench -p quire-benches --bench build_throughput [-- [quire] SIZE...]`: with `quire`,
//! the spec sets `[hnsw] builder = "quire"` (default: hnsw_rs).

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::process::Command;
use std::time::Instant;

use quire_core::spec::HnswBuilder;
use quire_core::{BuildSpec, Document, SnapshotId};
use quire_embed::Models;
use quire_index::{BuildRequest, NoProgress, build_index};

#[path = "synthetic.rs"]
mod synthetic;
use synthetic::Rng;

const WORDS_PER_CHUNK: usize = 200;

/// `n` documents of one ~200-word paragraph each, words drawn from a Zipf-like vocabulary.
fn corpus(n: usize) -> Vec<Document> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let vocab: Vec<String> = (0..20_000).map(|i| format!("w{i:x}")).collect();
    let mut docs: Vec<Document> = (0..n)
        .map(|i| {
            let words: Vec<&str> = (0..WORDS_PER_CHUNK)
                .map(|_| {
                    // Squaring a uniform draw skews toward frequent (low) ranks.
                    let u = (rng.next() % 10_000) as f64 / 10_000.0;
                    vocab[(u * u * vocab.len() as f64) as usize].as_str()
                })
                .collect();
            Document {
                id: format!("doc-{i:07}"),
                title: Some(format!("Synthetic document {i}")),
                metadata: Default::default(),
                acl: None,
                updated_at: None,
                text: format!("{}.", words.join(" ")),
            }
        })
        .collect();
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    docs
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Build one corpus in this process and print one table row.
fn run_one(n: usize, builder: HnswBuilder) {
    let docs = corpus(n);
    let mut spec = BuildSpec::default();
    spec.hnsw.builder = builder;
    let embedder = Models::builtin().resolve(&spec.embedding).expect("hash-v1");
    let snapshot = SnapshotId::from_hash(blake3::hash(format!("bench-{n}").as_bytes()));
    let dir = tempfile::tempdir().expect("tempdir");
    let request = BuildRequest {
        snapshot_id: &snapshot,
        documents: &docs,
        spec: &spec,
        embedder: embedder.as_ref(),
        imported_at: "2026-01-01T00:00:00Z",
        cache: None,
        donors: &[],
    };
    let started = Instant::now();
    let manifest = build_index(&request, dir.path(), &NoProgress).expect("build");
    let total = started.elapsed().as_secs_f64();
    let chunks = manifest.counts.chunks as f64;
    let rate = |stage: &str| {
        let ms = manifest
            .build
            .timings_ms
            .get(stage)
            .copied()
            .unwrap_or(0)
            .max(1) as f64;
        format!("{:>9.0}", chunks / (ms / 1000.0))
    };
    println!(
        "| {:>7} | {:>7.1} | {:>9.0} | {} | {} | {} | {} | {} | {:>8.0} |",
        manifest.counts.chunks,
        total,
        chunks / total,
        rate("chunk"),
        rate("embed"),
        rate("bm25"),
        rate("hnsw"),
        rate("write"),
        peak_rss_mib()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let builder = if args.iter().any(|a| a == "quire") {
        HnswBuilder::Quire
    } else {
        HnswBuilder::HnswRs
    };
    if let [n] = sizes.as_slice()
        && std::env::var_os("QUIRE_BENCH_CHILD").is_some()
    {
        run_one(*n, builder);
        return;
    }
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    println!(
        "build throughput, default spec (markdown/256, hash-v1 dim 256, HNSW m 16 efc 200, builder {builder:?}), {} threads",
        rayon::current_num_threads()
    );
    println!(
        "| chunks  | total s | chunks/s  | chunk/s   | embed/s   | bm25/s    | hnsw/s    | write/s   | peak MiB |"
    );
    println!(
        "|---------|---------|-----------|-----------|-----------|-----------|-----------|-----------|----------|"
    );
    let exe = std::env::current_exe().expect("current exe");
    for n in sizes {
        let status = Command::new(&exe)
            .arg(n.to_string())
            .args((builder == HnswBuilder::Quire).then_some("quire"))
            .env("QUIRE_BENCH_CHILD", "1")
            .status()
            .expect("spawn");
        assert!(status.success(), "bench child for {n} failed");
    }
}
