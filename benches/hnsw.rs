//! HNSW builders side by side on the same vectors and parameters (M 16, ef_construction 200):
//! quire's own builder at 1 and 2 threads, hnsw_rs (serial, as quire used it), and, through
//! `benches/hnswlib_compare.py`, hnswlib and faiss-cpu. Prints build throughput, recall@10 at
//! ef 16/32/64/128 and per-query latency (one query thread), and the latency of the smallest ef
//! in a sweep that reaches recall@10 0.95. quire's and hnsw_rs's graphs are both searched by
//! quire's frozen-graph search (`ann::search`).
//!
//! ```text
//! cargo bench -p quire-benches --bench hnsw                   # synthetic 100k (hash-v1, 256-d)
//! cargo bench -p quire-benches --bench hnsw -- synthetic 20000
//! cargo bench -p quire-benches --bench hnsw -- index DIR      # an index's vectors; queries are
//!                                                             # SciFact's, embedded by its model
//! QUIRE_BENCH_PYTHON=/path/to/venv/bin/python  adds hnswlib and faiss (pip install numpy hnswlib faiss-cpu)
//! QUIRE_BENCH_HNSW_RS=0                        skips hnsw_rs (5 minutes at 100k)
//! QUIRE_BENCH_THREADS=1,2                      thread counts of the quire builds
//! ```
//!
//! The vectors, queries and exact top-10 are written to `target/quire-bench/hnsw-<set>/` for
//! the Python side.

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use hnsw_rs::hnsw::Hnsw;
use quire_core::BuildSpec;
use quire_embed::Models;
use quire_index::ann::{self, Vectors};
use quire_index::distance::DotDistance;
use quire_index::graph::FrozenGraph;
use quire_index::hnsw_build::{self, HnswParams};
use quire_index::{OpenIndex, Planner, VectorPlan};

#[path = "synthetic.rs"]
mod synthetic;
use synthetic::{Rng, topic_corpus};

const M: usize = 16;
const EF_CONSTRUCTION: usize = 200;
const EFS: [usize; 4] = [16, 32, 64, 128];
const SWEEP: [usize; 18] = [
    10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 192, 256, 384, 512, 768, 1024,
];
const QUERIES: usize = 300;
const QUERY_WORDS: usize = 64;

struct Set {
    name: String,
    dim: usize,
    vectors: Vec<f32>,
    queries: Vec<f32>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The retrieval bench's corpus: each document's text embedded by hash-v1 (every document is
/// one chunk under the default spec), and 64-word windows of random documents as queries.
fn synthetic(n: usize) -> Set {
    let docs = topic_corpus(n);
    let embedder = Models::builtin()
        .resolve(&BuildSpec::default().embedding)
        .unwrap();
    let embed = |texts: &[&str]| -> Vec<f32> {
        texts
            .chunks(256)
            .flat_map(|batch| {
                embedder
                    .embed_batch(batch)
                    .unwrap()
                    .into_raw_vec_and_offset()
                    .0
            })
            .collect()
    };
    let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
    let mut rng = Rng(42);
    let queries: Vec<String> = (0..QUERIES)
        .map(|_| {
            let words: Vec<&str> = docs[rng.below(docs.len())].text.split(' ').collect();
            let at = rng.below(words.len() - QUERY_WORDS);
            words[at..at + QUERY_WORDS].join(" ")
        })
        .collect();
    let query_refs: Vec<&str> = queries.iter().map(String::as_str).collect();
    Set {
        name: format!("synthetic-{n}"),
        dim: embedder.dim(),
        vectors: embed(&texts),
        queries: embed(&query_refs),
    }
}

/// The vectors of a built index, and SciFact's queries embedded by the index's own model.
fn from_index(dir: &Path) -> Set {
    let models = Models::from_dir(&workspace().join("models")).unwrap();
    let index = OpenIndex::open(dir, &models).expect("open the index");
    let queries_file = workspace().join("../shared/datasets/scifact/queries.jsonl");
    let text = std::fs::read_to_string(&queries_file).expect("scifact queries");
    let queries: Vec<f32> = text
        .lines()
        .take(QUERIES)
        .flat_map(|line| {
            let q: serde_json::Value = serde_json::from_str(line).unwrap();
            index.embed(q["text"].as_str().unwrap()).unwrap()
        })
        .collect();
    let vectors = index.vectors();
    let dim = vectors.row(0).len();
    let flat: Vec<f32> = (0..vectors.len() as u32)
        .flat_map(|i| vectors.row(i).to_vec())
        .collect();
    Set {
        name: format!("index-{}", index.manifest().embedding.model_id),
        dim,
        vectors: flat,
        queries,
    }
}

/// CPU seconds this process has used (user + system), from /proc: under a loaded machine it
/// shows the work a build did when wall time also counts waiting for a core.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Recall@10 and latencies (p50, mean, in us) of frozen-graph search at beam width `ef`.
fn measure(graph: &FrozenGraph, set: &Set, truth: &[Vec<u32>], ef: usize) -> (f64, f64, f64) {
    let vectors = Vectors::new(&set.vectors, set.dim);
    let (mut found, mut times) = (0usize, Vec::with_capacity(truth.len()));
    for (q, t) in set.queries.chunks_exact(set.dim).zip(truth) {
        let started = Instant::now();
        let got = ann::search(graph, vectors, q, 10, ef, None);
        times.push(started.elapsed().as_secs_f64() * 1e6);
        found += got.iter().filter(|g| t.contains(&g.0)).count();
    }
    let recall = found as f64 / (truth.len() * 10) as f64;
    let mean_us = mean(&times);
    times.sort_by(f64::total_cmp);
    (recall, times[times.len() / 2], mean_us)
}

fn report(name: &str, graph: &FrozenGraph, set: &Set, truth: &[Vec<u32>]) {
    for ef in EFS {
        let (recall, p50, mean_us) = measure(graph, set, truth, ef);
        println!("| {name:<22} | {ef:>4} | {recall:>9.3} | {p50:>7.0} | {mean_us:>7.0} |");
    }
    match SWEEP
        .iter()
        .map(|&ef| (ef, measure(graph, set, truth, ef)))
        .find(|(_, (recall, _, _))| *recall >= 0.95)
    {
        Some((ef, (recall, p50, mean_us))) => println!(
            "| {name:<22} | {:>4} | {recall:>9.3} | {p50:>7.0} | {mean_us:>7.0} |",
            format!("{ef}*")
        ),
        None => println!("| {name:<22} | >1024 |        - |       - |       - |"),
    }
}

/// Chunk `i` of the synthetic corpus is readable by bucket group `i * 7919 mod 1000`
/// (`synthetic::topic_corpus`); the retrieval bench's reader of 300 buckets reads 30% of it.
const FILTER_PERCENT: usize = 30;

/// A search run per query vector: (ordinal, similarity) hits.
type Search<'a> = dyn Fn(&[f32]) -> Vec<(u32, f32)> + 'a;

/// Recall@10 and latency of the filtered query as `OpenIndex::vector` plans it (the cost model
/// of `quire_index::plan` for this selectivity, ef_search 64 and k 10), of the walk at the beams
/// ef 64 x sqrt(1 / selectivity) and 2x to 4x that, and of the exact scan of the allowed rows.
fn report_filtered(name: &str, graph: &FrozenGraph, set: &Set) {
    let vectors = Vectors::new(&set.vectors, set.dim);
    let n = vectors.len();
    let allowed = ann::Allowed::from_fn(n, |i| (i as usize * 7919) % 1000 < FILTER_PERCENT * 10);
    let widen = (1.0 / allowed.selectivity()).sqrt().min(4.0);
    let sqrt_beam = (64.0 * widen).ceil() as usize;
    let planned = Planner::Cost.plan(n, allowed.count(), 64, 10, 0);
    let truth: Vec<Vec<(u32, f32)>> = set
        .queries
        .chunks_exact(set.dim)
        .map(|q| ann::exact(vectors, q, Some(&allowed), 10))
        .collect();
    let row = |label: String, run: &Search<'_>| {
        let (mut found, mut wanted, mut times) = (0usize, 0usize, Vec::new());
        for (q, t) in set.queries.chunks_exact(set.dim).zip(&truth) {
            let started = Instant::now();
            let got = run(q);
            times.push(started.elapsed().as_secs_f64() * 1e6);
            found += got.iter().filter(|g| t.iter().any(|x| x.0 == g.0)).count();
            wanted += t.len();
        }
        let mean_us = mean(&times);
        times.sort_by(f64::total_cmp);
        let recall = found as f64 / wanted.max(1) as f64;
        println!(
            "| {name:<22} | {label:>10} | {recall:>9.3} | {:>7.0} | {mean_us:>7.0} |",
            times[times.len() / 2]
        );
    };
    match planned {
        VectorPlan::Walk { ef } => row(format!("plan {ef}"), &|q| {
            ann::search(graph, vectors, q, 10, ef, Some(&allowed))
        }),
        _ => row("plan exact".into(), &|q| {
            ann::exact(vectors, q, Some(&allowed), 10)
        }),
    }
    for ef in [sqrt_beam, 2 * sqrt_beam, 3 * sqrt_beam, 4 * sqrt_beam] {
        row(ef.to_string(), &|q| {
            ann::search(graph, vectors, q, 10, ef, Some(&allowed))
        });
    }
    row("exact".into(), &|q| {
        ann::exact(vectors, q, Some(&allowed), 10)
    });
}

/// Thread counts of the quire builds: `QUIRE_BENCH_THREADS=1,2` (the default).
fn thread_counts() -> Vec<usize> {
    std::env::var("QUIRE_BENCH_THREADS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .map(|t| {
            t.trim()
                .parse()
                .expect("QUIRE_BENCH_THREADS: thread counts")
        })
        .collect()
}

fn build_quire(set: &Set, threads: usize) -> (FrozenGraph, f64, f64) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let params = HnswParams {
        m: M,
        ef_construction: EF_CONSTRUCTION,
    };
    let (started, cpu) = (Instant::now(), cpu_secs());
    let graph = pool
        .install(|| hnsw_build::build(Vectors::new(&set.vectors, set.dim), params, |_| {}))
        .unwrap();
    (graph, started.elapsed().as_secs_f64(), cpu_secs() - cpu)
}

fn build_hnsw_rs(set: &Set) -> (FrozenGraph, f64, f64) {
    let n = set.vectors.len() / set.dim;
    let (started, cpu) = (Instant::now(), cpu_secs());
    let hnsw = Hnsw::<f32, DotDistance>::new(M, n, 16, EF_CONSTRUCTION, DotDistance);
    for (i, v) in set.vectors.chunks_exact(set.dim).enumerate() {
        hnsw.insert_slice((v, i));
    }
    let (secs, cpu) = (started.elapsed().as_secs_f64(), cpu_secs() - cpu);
    (FrozenGraph::from_hnsw(&hnsw, n).unwrap(), secs, cpu)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let set = match args.first().map(String::as_str) {
        Some("index") => from_index(Path::new(args.get(1).expect("index DIR"))),
        Some("synthetic") => synthetic(args.get(1).map_or(100_000, |n| n.parse().unwrap())),
        _ => synthetic(100_000),
    };
    let n = set.vectors.len() / set.dim;
    let out = workspace()
        .join("target/quire-bench")
        .join(format!("hnsw-{}", set.name));
    std::fs::create_dir_all(&out).unwrap();
    write_f32(&out.join("vectors.f32"), &set.vectors);
    write_f32(&out.join("queries.f32"), &set.queries);
    let vectors = Vectors::new(&set.vectors, set.dim);
    let truth: Vec<Vec<u32>> = set
        .queries
        .chunks_exact(set.dim)
        .map(|q| {
            ann::exact(vectors, q, None, 10)
                .into_iter()
                .map(|h| h.0)
                .collect()
        })
        .collect();
    let truth_bytes: Vec<u8> = truth
        .iter()
        .flatten()
        .flat_map(|i| i.to_le_bytes())
        .collect();
    std::fs::write(out.join("truth.u32"), truth_bytes).unwrap();

    println!(
        "HNSW builders on {} ({n} x {}), M {M}, ef_construction {EF_CONSTRUCTION}, {} queries",
        set.name,
        set.dim,
        set.queries.len() / set.dim
    );
    println!("\n| builder                | threads |  build s | vectors/s |   cpu s |");
    println!("|------------------------|---------|----------|-----------|---------|");
    let mut graphs = Vec::new();
    let mut first: Option<Vec<u8>> = None;
    for threads in thread_counts() {
        let (graph, secs, cpu) = build_quire(&set, threads);
        println!(
            "| quire                  | {threads:>7} | {secs:>8.1} | {:>9.0} | {cpu:>7.1} |",
            n as f64 / secs
        );
        let bytes = graph.to_bytes();
        assert!(
            first.as_ref().is_none_or(|f| *f == bytes),
            "thread counts disagree"
        );
        first = Some(bytes);
        graphs.push(("quire", graph));
    }
    graphs.truncate(1);
    if std::env::var("QUIRE_BENCH_HNSW_RS").as_deref() != Ok("0") {
        let (graph, secs, cpu) = build_hnsw_rs(&set);
        println!(
            "| hnsw_rs (serial)       | {:>7} | {secs:>8.1} | {:>9.0} | {cpu:>7.1} |",
            1,
            n as f64 / secs
        );
        graphs.push(("hnsw_rs", graph));
    }
    println!(
        "\nrecall@10 and latency per query (one query thread); ef* = smallest ef reaching recall 0.95"
    );
    println!("| index                  |   ef | recall@10 | p50 us  | mean us |");
    println!("|------------------------|------|-----------|---------|---------|");
    for (name, graph) in &graphs {
        let n0 = graph.layers[0].neighbours.len();
        let n1 = graph.layers.get(1).map_or(0, |l| l.neighbours.len());
        let c1 = graph.layers.get(1).map_or(0, |l| l.nodes.len());
        eprintln!(
            "{name}: layers {}, layer-0 mean degree {:.1}, layer-1 {} nodes mean degree {:.1}",
            graph.layers.len(),
            n0 as f64 / graph.len() as f64,
            c1,
            n1 as f64 / c1.max(1) as f64
        );
        report(&format!("{name} (frozen search)"), graph, &set, &truth);
    }
    println!(
        "\nfiltered: {FILTER_PERCENT}% allowed (the retrieval bench's readers of buckets 0..{}), first the plan OpenIndex::vector picks (cost model, ef_search 64, k 10), then ef 64 x sqrt(1 / selectivity), 2x to 4x it and the exact scan",
        FILTER_PERCENT * 10
    );
    println!("| index                  |         ef | recall@10 | p50 us  | mean us |");
    println!("|------------------------|------------|-----------|---------|---------|");
    for (name, graph) in &graphs {
        report_filtered(&format!("{name} (frozen search)"), graph, &set);
    }
    if let Ok(python) = std::env::var("QUIRE_BENCH_PYTHON") {
        run_python(&python, &out);
    }
}

fn run_python(python: &str, dir: &Path) {
    let status = std::process::Command::new(python)
        .arg(workspace().join("benches/hnswlib_compare.py"))
        .args(["--dir".as_ref(), dir.as_os_str()])
        .args(["--m", &M.to_string()])
        .args(["--ef-construction", &EF_CONSTRUCTION.to_string()])
        .status()
        .expect("run python");
    assert!(status.success(), "hnswlib_compare.py failed");
}
