//! Build throughput and memory: synthetic corpora of ~200-word chunks, built with the default
//! spec. Prints, per build, the total time and chunks/s, then each stage's time and peak RSS
//! (each size runs in its own child process so the peaks are its own).
//!
//! `cargo bench -p quire-benches --bench build_throughput [-- [quire] [topics] [acl] SIZE...]`
//! (default sizes 10k and 100k):
//! - `quire`: the spec sets `[hnsw] builder = "quire"` (default: hnsw_rs).
//! - `topics`: documents drawn from 100 topics, so hash-v1 vectors cluster the way real
//!   embeddings do (default: every word from one Zipf-like vocabulary, which makes vectors nearly
//!   random in 256 dimensions, the hardest case for a graph).
//! - `acl`: after the cold build, rebuild with one document's ACL changed (a new snapshot, same
//!   texts), reusing the first index's stages, and print that build too.
//!
//! The documents are generated again on every pass of the build, as the store parses a stored
//! snapshot again on every pass, so the peak RSS is the build's own, not the corpus's. The BM25
//! pass runs alongside the embed and graph stages, so its time overlaps theirs and the stage
//! times add up to more than the total.

#![allow(clippy::print_stdout, clippy::expect_used)]

use std::process::Command;
use std::time::Instant;

use quire_core::spec::HnswBuilder;
use quire_core::{Acl, BuildSpec, Document, IndexId, Manifest, SnapshotId};
use quire_embed::Models;
use quire_index::source::BLOCK_DOCS;
use quire_index::{BuildRequest, DocumentSource, Donor, Progress, build_index};
use rayon::prelude::*;

#[path = "synthetic.rs"]
mod synthetic;
use synthetic::Rng;

const WORDS_PER_CHUNK: usize = 200;
const VOCABULARY: usize = 20_000;

/// `n` generated documents: document `i` depends only on `i`, so any pass regenerates it.
struct Generated {
    n: usize,
    topics: Option<Vec<Vec<usize>>>,
    /// The document whose ACL differs from the others', if any.
    restricted: Option<usize>,
}

impl Generated {
    fn new(n: usize, topics: bool) -> Self {
        let mut rng = Rng(0x5EED_0FC0_FFEE);
        let topics = topics.then(|| {
            (0..100)
                .map(|_| (0..300).map(|_| rng.below(VOCABULARY)).collect())
                .collect()
        });
        Self {
            n,
            topics,
            restricted: None,
        }
    }

    fn document(&self, i: usize) -> Document {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407));
        let topic = self.topics.as_ref().map(|t| &t[rng.below(t.len())]);
        let words: Vec<String> = (0..WORDS_PER_CHUNK)
            .map(|_| {
                let word = match topic {
                    Some(topic) if rng.below(10) < 7 => topic[rng.below(topic.len())],
                    // Squaring a uniform draw skews toward frequent (low) ranks.
                    _ => {
                        let u = rng.below(10_000) as f64 / 10_000.0;
                        (u * u * VOCABULARY as f64) as usize
                    }
                };
                format!("w{word:x}")
            })
            .collect();
        let group = if self.restricted == Some(i) {
            "group:hr"
        } else {
            "group:all"
        };
        Document {
            id: format!("doc-{i:07}"),
            title: Some(format!("Synthetic document {i}")),
            metadata: Default::default(),
            acl: Some(Acl::parse([group]).expect("acl")),
            updated_at: None,
            text: format!("{}.", words.join(" ")),
        }
    }
}

impl DocumentSource for Generated {
    fn document_count(&self) -> u64 {
        self.n as u64
    }

    fn for_each_block(
        &self,
        visit: &mut dyn FnMut(&[Document]) -> quire_index::Result<()>,
    ) -> quire_index::Result<()> {
        // A block at a time, generated on every thread, as the store parses a block of a
        // stored snapshot on every thread.
        for start in (0..self.n).step_by(BLOCK_DOCS) {
            let block: Vec<Document> = (start..self.n.min(start + BLOCK_DOCS))
                .into_par_iter()
                .map(|i| self.document(i))
                .collect();
            visit(&block)?;
        }
        Ok(())
    }
}

/// The process's peak RSS in MiB since the last reset.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Start measuring a new peak (Linux: writing 5 to clear_refs resets VmHWM to the current RSS).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Records each stage's peak RSS.
#[derive(Default)]
struct StagePeaks(std::sync::Mutex<Vec<(&'static str, f64)>>);

impl StagePeaks {
    fn close_stage(&self) {
        if let Ok(mut peaks) = self.0.lock()
            && let Some(last) = peaks.last_mut()
        {
            last.1 = peak_rss_mib();
        }
    }
}

impl Progress for StagePeaks {
    fn stage(&self, name: &'static str, _: u64) {
        self.close_stage();
        reset_peak_rss();
        if let Ok(mut peaks) = self.0.lock() {
            peaks.push((name, 0.0));
        }
    }
    fn advance(&self, _: u64) {}
}

fn build(
    source: &Generated,
    spec: &BuildSpec,
    snapshot: &str,
    donors: &[Donor],
    dir: &std::path::Path,
) -> (Manifest, f64, Vec<(&'static str, f64)>) {
    let embedder = Models::builtin().resolve(&spec.embedding).expect("hash-v1");
    let snapshot = SnapshotId::from_hash(blake3::hash(snapshot.as_bytes()));
    let request = BuildRequest {
        snapshot_id: &snapshot,
        documents: source,
        spec,
        embedder: embedder.as_ref(),
        imported_at: "2026-01-01T00:00:00Z",
        cache: None,
        donors,
    };
    let peaks = StagePeaks::default();
    let started = Instant::now();
    let manifest = build_index(&request, dir, &peaks).expect("build");
    let total = started.elapsed().as_secs_f64();
    peaks.close_stage();
    let peaks = peaks.0.into_inner().expect("peaks");
    (manifest, total, peaks)
}

fn print_row(what: &str, manifest: &Manifest, total: f64, peaks: &[(&'static str, f64)]) {
    let chunks = manifest.counts.chunks as f64;
    let stages: Vec<String> = ["chunk", "embed", "bm25", "hnsw", "write"]
        .iter()
        .map(|stage| {
            let s = manifest.build.timings_ms.get(*stage).copied().unwrap_or(0) as f64 / 1000.0;
            let mib = peaks.iter().find(|(n, _)| n == stage).map_or(0.0, |p| p.1);
            let record = match *stage {
                "embed" => "vectors",
                "hnsw" => "graph",
                other => other,
            };
            let reused = manifest
                .build
                .stages
                .get(record)
                .is_some_and(|r| r.reused_from.is_some());
            format!("{s:>7.1}{} {mib:>6.0}", if reused { "r" } else { " " })
        })
        .collect();
    let peak = peaks.iter().map(|p| p.1).fold(0.0, f64::max);
    println!(
        "| {what:<5} | {:>8} | {total:>7.1} | {:>8.0} | {} | {peak:>6.0} |",
        manifest.counts.chunks,
        chunks / total,
        stages.join(" | "),
    );
}

/// Build one corpus in this process and print its rows.
fn run_one(n: usize, builder: HnswBuilder, topics: bool, acl: bool) {
    let mut source = Generated::new(n, topics);
    let mut spec = BuildSpec::default();
    spec.hnsw.builder = builder;
    let cold_dir = tempfile::tempdir().expect("tempdir");
    let (cold, total, peaks) = build(&source, &spec, &format!("bench-{n}"), &[], cold_dir.path());
    print_row("cold", &cold, total, &peaks);
    if acl {
        source.restricted = Some(n / 2);
        let donors = [Donor {
            dir: cold_dir.path().to_owned(),
            manifest: cold.clone(),
        }];
        let dir = tempfile::tempdir().expect("tempdir");
        let (warm, warm_total, peaks) = build(
            &source,
            &spec,
            &format!("bench-{n}-acl"),
            &donors,
            dir.path(),
        );
        print_row("acl", &warm, warm_total, &peaks);
        let from: Vec<&IndexId> = warm
            .build
            .stages
            .values()
            .filter_map(|r| r.reused_from.as_ref())
            .collect();
        println!(
            "ACL-only rebuild: {warm_total:.1} s = {:.1}% of the cold build ({} stages reused)",
            100.0 * warm_total / total,
            from.len()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let builder = if flag("quire") {
        HnswBuilder::Quire
    } else {
        HnswBuilder::HnswRs
    };
    if let [n] = sizes.as_slice()
        && std::env::var_os("QUIRE_BENCH_CHILD").is_some()
    {
        run_one(*n, builder, flag("topics"), flag("acl"));
        return;
    }
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    println!(
        "build throughput, default spec (markdown/256, hash-v1 dim 256, HNSW m 16 efc 200, builder {builder:?}), {} corpus, {} threads",
        if flag("topics") { "topic" } else { "uniform" },
        rayon::current_num_threads()
    );
    println!("stage cells: seconds (r = reused from the cold build) and peak RSS MiB");
    println!(
        "| build | chunks   | total s | chunks/s | chunk s  MiB  | embed s  MiB  | bm25 s   MiB  | hnsw s   MiB  | write s  MiB  | peak MiB |"
    );
    println!(
        "|-------|----------|---------|----------|---------------|---------------|---------------|---------------|---------------|----------|"
    );
    let exe = std::env::current_exe().expect("current exe");
    for n in sizes {
        let status = Command::new(&exe)
            .arg(n.to_string())
            .args(args.iter().filter(|a| a.parse::<usize>().is_err()))
            .env("QUIRE_BENCH_CHILD", "1")
            .status()
            .expect("spawn");
        assert!(status.success(), "bench child for {n} failed");
    }
}
