//! quire's side of the peer comparison (`benches/peers.py`): one query thread, k 10, over a
//! built index, and an export of the same data for the peers.
//!
//! ```text
//! cargo bench -p quire-benches --bench peers -- INDEX_DIR OUT_DIR [BEIR_DATASET_DIR | QUERIES.jsonl]
//! python benches/peers.py OUT_DIR
//! ```
//!
//! The queries are a BEIR dataset's judged test queries (`quire_eval::dataset::load`), SciFact's
//! by default, or the lines of a `.jsonl` file (`{"text": ...}` each), such as the
//! `queries-100k.jsonl` that `--bench retrieval` writes for the synthetic 100k index. quire is timed
//! inside the process, query embedding excluded (the query vectors are embedded once, by the
//! index's own model, and exported so the peers search the very same vectors). A second reader
//! may read a fixed pseudo-random 10% of the chunks (`allowed10.u32`).
//!
//! Written to `OUT_DIR`: `meta.json`, `chunks.jsonl` (title and body per chunk ordinal),
//! `queries.jsonl`, `query_vectors.f32`, `allowed10.u32` and `quire.json` (quire's numbers).

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use quire_core::Reader;
use quire_embed::Models;
use quire_index::ann::{self, Allowed};
use quire_index::{Mode, OpenIndex, Query};
use serde_json::{Value, json};

const K: usize = 10;
const ROUNDS: usize = 3;

struct Args {
    index: PathBuf,
    out: PathBuf,
    /// A BEIR dataset directory (its test split's judged queries are the queries), or a
    /// `.jsonl` file of queries.
    queries: PathBuf,
}

fn args() -> Option<Args> {
    let positional: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let scifact = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/scifact");
    Some(Args {
        index: positional.first()?.into(),
        out: positional.get(1)?.into(),
        queries: positional.get(2).map_or(scifact, PathBuf::from),
    })
}

/// p50 and p99 of `ROUNDS` timed passes (after one warm-up pass) of `f` over every query.
fn time_us(n: usize, mut f: impl FnMut(usize)) -> Value {
    (0..n).for_each(&mut f);
    let mut times = Vec::with_capacity(n * ROUNDS);
    for _ in 0..ROUNDS {
        for i in 0..n {
            let started = Instant::now();
            f(i);
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    json!({ "p50": at(0.5).round(), "p99": at(0.99).round() })
}

fn recall(got: &[Vec<(u32, f32)>], truth: &[Vec<(u32, f32)>]) -> f64 {
    let found: usize = got
        .iter()
        .zip(truth)
        .map(|(g, t)| g.iter().filter(|h| t.iter().any(|x| x.0 == h.0)).count())
        .sum();
    let total: usize = truth.iter().map(Vec::len).sum();
    found as f64 / total.max(1) as f64
}

fn with_recall(mut timing: Value, recall: f64) -> Value {
    timing["recall"] = json!((recall * 1e4).round() / 1e4);
    timing
}

fn write_lines(path: &Path, lines: impl Iterator<Item = Value>) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for line in lines {
        writeln!(out, "{line}").expect("write");
    }
}

fn write_raw<T: Copy>(path: &Path, values: impl Iterator<Item = T>, bytes: fn(T) -> [u8; 4]) {
    let flat: Vec<u8> = values.flat_map(bytes).collect();
    std::fs::write(path, flat).expect("write");
}

fn export(index: &OpenIndex, args: &Args, texts: &[String], vectors: &[Vec<f32>], ten: &Allowed) {
    std::fs::create_dir_all(&args.out).expect("out dir");
    let m = index.manifest();
    let spec = &m.spec;
    let meta = json!({
        "name": args.out.file_name().map(|n| n.to_string_lossy().into_owned()),
        "index_id": m.index_id.to_string(),
        "dim": m.embedding.dim,
        "chunks": index.chunks().len(),
        "vectors": std::fs::canonicalize(args.index.join("vectors.f32")).expect("vectors"),
        "k": K,
        "m": spec.hnsw.m,
        "ef_construction": spec.hnsw.ef_construction,
        "ef_search": spec.hnsw.ef_search,
        "candidates": spec.fusion.candidates,
        "analyzer": format!("{:?}", spec.bm25.analyzer).to_lowercase(),
    });
    std::fs::write(args.out.join("meta.json"), meta.to_string()).expect("meta");
    write_lines(
        &args.out.join("chunks.jsonl"),
        (0..index.chunks().len() as u32).map(|i| {
            let chunk = &index.chunks()[i as usize];
            let title = &index.docs()[chunk.doc as usize].title;
            json!({ "title": title, "body": index.chunk_text(i).expect("chunk text") })
        }),
    );
    write_lines(
        &args.out.join("queries.jsonl"),
        texts.iter().map(|t| json!({ "text": t })),
    );
    write_raw(
        &args.out.join("query_vectors.f32"),
        vectors.iter().flatten().copied(),
        f32::to_le_bytes,
    );
    write_raw(
        &args.out.join("allowed10.u32"),
        ten.iter(),
        u32::to_le_bytes,
    );
}

/// The query texts: a `.jsonl` file's `text` fields in file order, or a BEIR dataset's test
/// queries.
fn query_texts(source: &Path) -> Vec<String> {
    if source.extension().is_some_and(|e| e == "jsonl") {
        let text = std::fs::read_to_string(source).expect("queries file");
        return text
            .lines()
            .map(|line| {
                let value: Value = serde_json::from_str(line).expect("a JSON line");
                value["text"].as_str().expect("a text field").to_owned()
            })
            .collect();
    }
    let dataset = quire_eval::dataset::load(source, "test").expect("dataset");
    dataset.queries.into_values().collect()
}

fn main() {
    let Some(args) = args() else {
        println!(
            "usage: cargo bench -p quire-benches --bench peers -- INDEX_DIR OUT_DIR [BEIR_DATASET_DIR | QUERIES.jsonl]"
        );
        return;
    };
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let models = Models::from_dir(&workspace.join("models")).expect("models");
    let index = OpenIndex::open(&args.index, &models).expect("open the index");
    let texts = query_texts(&args.queries);
    let vectors: Vec<Vec<f32>> = texts.iter().map(|t| index.embed(t).unwrap()).collect();
    let n = index.chunks().len();
    // A fixed pseudo-random tenth: chunk i is readable when its hash lands in the first 10%.
    let ten = Arc::new(Allowed::from_fn(n, |i| {
        u64::from(blake3::hash(&i.to_le_bytes()).as_bytes()[0]) * 100 / 256 < 10
    }));
    let all = Arc::new(Allowed::from_fn(n, |_| true));
    export(&index, &args, &texts, &vectors, &ten);
    let q = texts.len();
    println!(
        "{}: {n} chunks, {q} queries, k {K}, one thread, {ROUNDS} rounds",
        index.manifest().index_id
    );

    let mut report = serde_json::Map::new();
    for (name, filter) in [("", None), ("_10", Some(ten.as_ref()))] {
        report.insert(
            format!("bm25{name}"),
            time_us(q, |i| {
                index.bm25_in(&texts[i], filter, K).unwrap();
            }),
        );
        let truth: Vec<_> = vectors
            .iter()
            .map(|v| ann::exact(index.vectors(), v, filter, K))
            .collect();
        if filter.is_none() {
            // What the final hits' texts cost: tantivy's doc store, one block per hit.
            report.insert(
                "text_10".into(),
                time_us(q, |i| {
                    for &(ordinal, _) in &truth[i] {
                        std::hint::black_box(index.chunk_text(ordinal).unwrap());
                    }
                }),
            );
        }
        report.insert(
            format!("exact{name}"),
            time_us(q, |i| {
                ann::exact(index.vectors(), &vectors[i], filter, K);
            }),
        );
        let allowed = if filter.is_some() { &ten } else { &all };
        let got: Vec<_> = vectors
            .iter()
            .map(|v| index.vector(v, allowed, K))
            .collect();
        let mut timing = time_us(q, |i| {
            index.vector(&vectors[i], allowed, K);
        });
        timing["plan"] = json!(index.vector_plan(allowed, K).to_string());
        report.insert(
            format!("vector{name}"),
            with_recall(timing, recall(&got, &truth)),
        );
        let reader = Reader::new(None, ["bench"]).unwrap();
        let query = |i: usize| Query {
            text: texts[i].clone(),
            reader: reader.clone(),
            k: K,
            mode: Mode::Hybrid,
            fusion: None,
            candidates: None,
        };
        let mut parts = [0u64; 3];
        let mut timing = time_us(q, |i| {
            let t = index
                .search_in(&query(i), Some(&vectors[i]), allowed.clone())
                .unwrap()
                .timings_us;
            parts = [parts[0] + t.bm25, parts[1] + t.vector, parts[2] + t.fusion];
        });
        // Mean microseconds of each step (the two retrievers may overlap).
        let runs = (q * (ROUNDS + 1)) as u64;
        timing["parts"] = json!({
            "bm25": parts[0] / runs, "vector": parts[1] / runs, "fusion": parts[2] / runs
        });
        report.insert(format!("hybrid{name}"), timing);
    }
    let truth: Vec<_> = vectors
        .iter()
        .map(|v| ann::exact(index.vectors(), v, None, K))
        .collect();
    let sweep: Vec<Value> = [10usize, 16, 24, 32, 48, 64, 96, 128, 192, 256]
        .into_iter()
        .map(|ef| {
            let got: Vec<_> = vectors
                .iter()
                .map(|v| ann::search(index.graph(), index.vectors(), v, K, ef, None))
                .collect();
            let mut timing = time_us(q, |i| {
                ann::search(index.graph(), index.vectors(), &vectors[i], K, ef, None);
            });
            timing["ef"] = json!(ef);
            with_recall(timing, recall(&got, &truth))
        })
        .collect();
    report.insert("graph".into(), Value::Array(sweep));
    let report = Value::Object(report);
    std::fs::write(args.out.join("quire.json"), report.to_string()).expect("quire.json");
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
