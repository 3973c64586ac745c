//! Retrieval latency and filtered recall on a synthetic 100k-chunk index.
//!
//! The corpus has 100 topics (each doc draws 70% of its words from its topic's vocabulary), so
//! hash-v1 vectors cluster the way real embeddings do. Each document is readable by
//! `group:all` and by one of 1000 bucket groups, so a reader holding `n` bucket groups may read
//! `n / 10` percent of the chunks. The index is built once into `target/quire-bench/` and reused.
//!
//! `cargo bench -p quire-benches --bench retrieval`
//! Writes `target/quire-bench/queries.f32` (query vectors) for `benches/hnswlib_compare.py`, and
//! `target/quire-bench/queries-100k.jsonl` (query texts) for `--bench peers`.

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Instant;

use quire_core::{Document, Reader};
use quire_index::{Mode, OpenIndex, Query, ann};
use quire_store::{Access, Store};

#[path = "synthetic.rs"]
mod synthetic;
use synthetic::{Rng, build_corpus, topic_corpus};

const DOCS: usize = 100_000;
const QUERIES: usize = 300;
/// Words per query: long enough that query vectors look like document vectors (hash-v1 is a
/// bag of words; 8-word queries are far outside the data's distribution, see the note).
const QUERY_WORDS: usize = 64;

fn open_index(docs: &[Document]) -> OpenIndex {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/quire-bench");
    let store = Store::open(root.join("data"), Access::Write).expect("data dir");
    let manifest = build_corpus(&store, &root.join("retrieval-100k.jsonl"), || docs.to_vec());
    OpenIndex::open(&store.index_dir(&manifest.index_id), store.models()).expect("open")
}

/// A reader holding `buckets` of the 1000 bucket groups (1000: the group every doc has).
fn bucket_reader(buckets: usize) -> Reader {
    let groups: Vec<String> = if buckets == 1000 {
        vec!["all".into()]
    } else {
        (0..buckets).map(|b| format!("b{b}")).collect()
    };
    Reader::new(None, &groups).unwrap()
}

fn percentile(sorted_us: &[f64], p: f64) -> f64 {
    sorted_us[((sorted_us.len() - 1) as f64 * p).round() as usize]
}

fn time_us<T>(mut f: impl FnMut(usize) -> T) -> (Vec<f64>, Vec<T>) {
    let mut times = Vec::with_capacity(QUERIES);
    let mut outs = Vec::with_capacity(QUERIES);
    for i in 0..QUERIES {
        let t = Instant::now();
        outs.push(f(i));
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    (times, outs)
}

fn row(name: &str, times: &[f64], recall: Option<f64>) {
    let recall = recall.map_or("-".to_owned(), |r| format!("{r:.3}"));
    println!(
        "| {name:<34} | {:>8.0} | {:>8.0} | {recall:>9} |",
        percentile(times, 0.5),
        percentile(times, 0.99)
    );
}

fn recall(got: &[Vec<(u32, f32)>], truth: &[Vec<(u32, f32)>]) -> f64 {
    let (mut hit, mut all) = (0, 0);
    for (g, t) in got.iter().zip(truth) {
        hit += g.iter().filter(|x| t.iter().any(|y| y.0 == x.0)).count();
        all += t.len();
    }
    hit as f64 / all.max(1) as f64
}

/// hnsw_rs's own search against quire's frozen copy of the same graph: 20k vectors of the
/// index, M 16, ef_construction 200, searched at ef 64.
fn frozen_vs_hnsw_rs(index: &OpenIndex, queries: &[Vec<f32>]) {
    use hnsw_rs::hnsw::Hnsw;
    use quire_index::distance::DotDistance;
    use quire_index::graph::FrozenGraph;

    const N: usize = 20_000;
    let vectors = index.vectors().prefix(N);
    let started = Instant::now();
    let hnsw = Hnsw::<f32, DotDistance>::new(16, N, 16, 200, DotDistance);
    for i in 0..N {
        hnsw.insert_slice((vectors.row(i as u32), i));
    }
    let build_s = started.elapsed().as_secs_f64();
    let frozen = FrozenGraph::from_hnsw(&hnsw, N).unwrap();
    let truth: Vec<_> = queries
        .iter()
        .map(|q| ann::exact(vectors, q, None, 10))
        .collect();
    println!(
        "\nfrozen graph vs hnsw_rs search over the same graph ({N} vectors, built serially in {build_s:.1}s = {:.0} vectors/s), k 10, ef 64",
        N as f64 / build_s
    );
    println!("| search                    |   p50 us |   p99 us | recall@10 |");
    println!("|---------------------------|----------|----------|-----------|");
    let (t, got) = time_us(|i| {
        hnsw.search(&queries[i], 10, 64)
            .into_iter()
            .map(|n| (n.d_id as u32, 1.0 - n.distance))
            .collect::<Vec<_>>()
    });
    println!(
        "| hnsw_rs Hnsw::search      | {:>8.0} | {:>8.0} | {:>9.3} |",
        percentile(&t, 0.5),
        percentile(&t, 0.99),
        recall(&got, &truth)
    );
    let (t, got) = time_us(|i| ann::search(&frozen, vectors, &queries[i], 10, 64, None));
    println!(
        "| quire frozen beam search  | {:>8.0} | {:>8.0} | {:>9.3} |",
        percentile(&t, 0.5),
        percentile(&t, 0.99),
        recall(&got, &truth)
    );
}

fn main() {
    let docs = topic_corpus(DOCS);
    let index = open_index(&docs);
    let chunks = index.chunks().len();
    let mut rng = Rng(42);
    let texts: Vec<String> = (0..QUERIES)
        .map(|_| {
            let words: Vec<&str> = docs[rng.below(docs.len())].text.split(' ').collect();
            let at = rng.below(words.len() - QUERY_WORDS);
            words[at..at + QUERY_WORDS].join(" ")
        })
        .collect();
    let vectors: Vec<Vec<f32>> = texts.iter().map(|t| index.embed(t).unwrap()).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/quire-bench");
    let flat: Vec<u8> = vectors
        .iter()
        .flatten()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    std::fs::write(root.join("queries.f32"), flat).unwrap();
    let lines: String = texts
        .iter()
        .map(|t| format!("{}\n", serde_json::json!({ "text": t })))
        .collect();
    std::fs::write(root.join("queries-100k.jsonl"), lines).unwrap();

    frozen_vs_hnsw_rs(&index, &vectors);

    let everyone = Reader::new(None, ["all"]).unwrap();
    let all = index.allowed(&everyone);
    println!(
        "\n{chunks} chunks, {QUERIES} queries, k = 10, one query thread; latency in microseconds"
    );
    println!("| query                              |      p50 |      p99 | recall@10 |");
    println!("|------------------------------------|----------|----------|-----------|");
    let q = |i: usize, mode| Query {
        text: texts[i].clone(),
        reader: everyone.clone(),
        k: 10,
        mode,
        fusion: None,
        candidates: None,
    };
    let (t, _) = time_us(|i| index.search(&q(i, Mode::Bm25)).unwrap());
    row("bm25 (search, 100 candidates)", &t, None);
    let (t, _) = time_us(|i| index.search(&q(i, Mode::Vector)).unwrap());
    row("vector (search, 100 candidates)", &t, None);
    let (t, _) = time_us(|i| index.search(&q(i, Mode::Hybrid)).unwrap());
    row("hybrid rrf (search, 100 candidates)", &t, None);
    let (t, _) = time_us(|i| index.bm25(&texts[i], &everyone, 10).unwrap());
    row("bm25 retriever, depth 10", &t, None);
    let truth_all: Vec<_> = vectors
        .iter()
        .map(|v| ann::exact(index.vectors(), v, None, 10))
        .collect();
    let (t, got) = time_us(|i| index.vector(&vectors[i], &all, 10));
    row(
        "vector retriever, depth 10",
        &t,
        Some(recall(&got, &truth_all)),
    );
    let (t, _) = time_us(|i| ann::exact(index.vectors(), &vectors[i], None, 10));
    row("exact scan, all chunks", &t, Some(1.0));

    println!("\nfiltered vector search, depth 10: graph walk vs exact scan of the allowed chunks");
    println!(
        "| allowed | chunks  | graph p50 | graph p99 | graph recall | exact p50 | exact p99 |"
    );
    println!(
        "|---------|---------|-----------|-----------|--------------|-----------|-----------|"
    );
    let graph_index = open_index(&docs).with_planner(quire_index::Planner::Walk);
    for buckets in [1000usize, 300, 100, 10, 1] {
        let reader = bucket_reader(buckets);
        let allowed = graph_index.allowed(&reader);
        let truth: Vec<_> = vectors
            .iter()
            .map(|v| ann::exact(index.vectors(), v, Some(&allowed), 10))
            .collect();
        let (tg, got) = time_us(|i| graph_index.vector(&vectors[i], &allowed, 10));
        let (te, _) = time_us(|i| ann::exact(index.vectors(), &vectors[i], Some(&allowed), 10));
        println!(
            "| {:>6.1}% | {:>7} | {:>9.0} | {:>9.0} | {:>12.3} | {:>9.0} | {:>9.0} |",
            allowed.selectivity() * 100.0,
            allowed.count(),
            percentile(&tg, 0.5),
            percentile(&tg, 0.99),
            recall(&got, &truth),
            percentile(&te, 0.5),
            percentile(&te, 0.99)
        );
    }
    println!("\nbeam width for filtered graph walks, depth 10 (ef = 64 x factor)");
    println!("| allowed | factor | p50 us | p99 us | recall@10 |");
    println!("|---------|--------|--------|--------|-----------|");
    for buckets in [1000usize, 300, 100] {
        let allowed = index.allowed(&bucket_reader(buckets));
        let truth: Vec<_> = vectors
            .iter()
            .map(|v| ann::exact(index.vectors(), v, Some(&allowed), 10))
            .collect();
        let filter = (allowed.count() < chunks).then_some(&*allowed);
        for factor in [1usize, 2, 4] {
            let (t, got) = time_us(|i| {
                ann::search(
                    index.graph(),
                    index.vectors(),
                    &vectors[i],
                    10,
                    64 * factor,
                    filter,
                )
            });
            println!(
                "| {:>6.1}% | {factor:>6} | {:>6.0} | {:>6.0} | {:>9.3} |",
                allowed.selectivity() * 100.0,
                percentile(&t, 0.5),
                percentile(&t, 0.99),
                recall(&got, &truth)
            );
        }
    }
    println!("\nproduction plan (the cheaper of walk and exact scan, `quire_index::plan`):");
    for buckets in [1000usize, 300, 100, 10, 1] {
        let reader = bucket_reader(buckets);
        let allowed = index.allowed(&reader);
        let truth: Vec<_> = vectors
            .iter()
            .map(|v| ann::exact(index.vectors(), v, Some(&allowed), 10))
            .collect();
        let (t, got) = time_us(|i| index.vector(&vectors[i], &allowed, 10));
        row(
            &format!(
                "vector, {:.1}% allowed, {}",
                allowed.selectivity() * 100.0,
                index.vector_plan(&allowed, 10)
            ),
            &t,
            Some(recall(&got, &truth)),
        );
        let (t, _) = time_us(|i| {
            index
                .search(&Query {
                    text: texts[i].clone(),
                    reader: reader.clone(),
                    k: 10,
                    mode: Mode::Hybrid,
                    fusion: None,
                    candidates: None,
                })
                .unwrap()
        });
        row(
            &format!("hybrid, {:.1}% allowed", allowed.selectivity() * 100.0),
            &t,
            None,
        );
    }
}
