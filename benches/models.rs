//! Real embedding models: all-MiniLM-L6-v2 throughput and latency, SciFact build time with a cold
//! and a warm embedding cache, and SciFact retrieval quality.
//!
//! ```sh
//! scripts/fetch-model
//! cargo bench -p quire-benches --bench models              # everything
//! cargo bench -p quire-benches --bench models -- speed     # throughput and latency only
//! cargo bench -p quire-benches --bench models -- quality   # SciFact build and evaluation only
//! cargo bench -p quire-benches --bench models -- quality int8  # the same at precision int8
//! QUIRE_BENCH_DIR=d cargo bench -p quire-benches --bench models -- eval  # evaluate d's build again
//! ```
//!
//! Quality: nDCG@10 of BM25, vector and hybrid retrieval on SciFact's **test** split (the numbers
//! the README reports), and a fusion grid (RRF `k`, weighted `alpha`) on the **train** split
//! (809 queries from `queries_all.jsonl`), which is where the default fusion is chosen; the test
//! split is never used for tuning. Documents are ranked by their best chunk.
//!
//! Speed runs both precisions (`fp32`, `int8`) on the first 256 SciFact abstracts, embedded as
//! `title + " " + text` (what the MiniLM specs embed), and writes the 1-thread vectors to
//! `target/embed-compare/quire-<precision>.f32` for `benches/embed_compare.py --quire-vectors`.
//!
//! `QUIRE_BENCH_DIR` keeps the data dirs (and so the cache) between runs; by default a temporary
//! directory is used and removed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use quire_core::spec::{EmbeddingSpec, FusionMethod, Precision};
use quire_core::{Acl, BuildSpec, Principal, Reader};
use quire_embed::{Embedder, Models};
use quire_eval::{Qrels, evaluate};
use quire_index::fusion::{self, Ranked};
use quire_index::{NoProgress, OpenIndex};
use quire_store::{Access, Store};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scifact() -> Option<PathBuf> {
    let dir = workspace().join("../shared/datasets/scifact");
    dir.join("corpus.jsonl").exists().then_some(dir)
}

fn minilm_spec() -> BuildSpec {
    let text = std::fs::read_to_string(workspace().join("specs/minilm.toml")).expect("spec");
    BuildSpec::from_toml(&text, "specs/minilm.toml").expect("valid spec")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn corpus_texts(dir: &Path, n: usize) -> Vec<String> {
    std::fs::read_to_string(dir.join("corpus.jsonl"))
        .expect("corpus")
        .lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let text = v["text"].as_str().unwrap_or_default();
            match v["title"].as_str().map(str::trim).filter(|t| !t.is_empty()) {
                Some(title) => format!("{title} {text}"),
                None => text.to_owned(),
            }
        })
        .collect()
}

fn speed(model: &dyn Embedder, dir: &Path) {
    use rayon::prelude::*;
    let texts = corpus_texts(dir, 256);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut results = Vec::new();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let started = Instant::now();
        let rows: Vec<f32> = pool.install(|| {
            refs.par_chunks(16)
                .flat_map_iter(|b| model.embed_batch(b).unwrap().into_iter())
                .collect()
        });
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{} embed {} SciFact abstracts, {threads} thread(s): {:.1} s, {:.1} chunks/s",
            model.precision().as_str(),
            refs.len(),
            secs,
            refs.len() as f64 / secs
        );
        results.push(rows);
    }
    let out = workspace().join("target/embed-compare");
    std::fs::create_dir_all(&out).unwrap();
    let bytes: Vec<u8> = results[0].iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(
        out.join(format!("quire-{}.f32", model.precision().as_str())),
        bytes,
    )
    .unwrap();
    println!(
        "vectors at 1 and 2 threads are bit-identical: {}",
        results[0]
            .iter()
            .zip(&results[1])
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    let queries = quire_eval::dataset::read_queries(&dir.join("queries.jsonl")).unwrap();
    // As a server embeds a query: on the caller's thread under load, and inside a pool of two
    // (each step split in halves) when a core is idle.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for (how, in_pool) in [("1 thread", false), ("2 threads", true)] {
        let mut times: Vec<f64> = queries
            .values()
            .map(|q| {
                let t = Instant::now();
                match in_pool {
                    true => pool.install(|| model.embed_query(q)).unwrap(),
                    false => model.embed_query(q).unwrap(),
                };
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "{} single-query embedding, {how}, {} SciFact queries: p50 {:.1} ms, p99 {:.1} ms",
            model.precision().as_str(),
            times.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
}

/// Import SciFact and build it with `spec` into `data`, returning the index and build seconds.
fn build(data: &Path, dir: &Path, models: &Models, spec: &BuildSpec) -> (Store, String, f64) {
    let store = Store::open(data, Access::Write)
        .unwrap()
        .with_models(models.clone());
    let snap = store.import(&dir.join("corpus.jsonl"), None).unwrap();
    let started = Instant::now();
    let built = store.build(&snap.snapshot_id, spec, &NoProgress).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let m = &built.manifest;
    println!(
        "  {} chunks, {:.1} s{}, cache {} hits / {} misses, stages {:?}\n  index {} digest {}",
        m.counts.chunks,
        secs,
        if built.reused { " (reused)" } else { "" },
        m.build.embed_cache.hits,
        m.build.embed_cache.misses,
        m.build.timings_ms,
        m.index_id,
        m.content_digest
    );
    (store, format!("{}/{}", m.index_id, m.content_digest), secs)
}

/// Per query: BM25 and vector candidates (chunk ordinal, score), best first.
type Candidates = BTreeMap<String, (Vec<(u32, f32)>, Vec<(u32, f32)>)>;

fn candidates(index: &OpenIndex, queries: &BTreeMap<String, String>, depth: usize) -> Candidates {
    let reader = Reader::new(None, Vec::<String>::new()).unwrap();
    let allowed = index.allowed(&reader);
    queries
        .iter()
        .map(|(id, text)| {
            let bm25 = index.bm25(text, &reader, depth).unwrap();
            let v = index.embed(text).unwrap();
            (id.clone(), (bm25, index.vector(&v, &allowed, depth)))
        })
        .collect()
}

fn ndcg(
    index: &OpenIndex,
    cands: &Candidates,
    qrels: &Qrels,
    fuse: impl Fn(&Ranked, &Ranked) -> Vec<u32>,
) -> f64 {
    let run: BTreeMap<String, Vec<String>> = cands
        .iter()
        .map(|(q, (b, v))| {
            let docs = fuse(b, v)
                .into_iter()
                .map(|o| {
                    let doc = index.chunks()[o as usize].doc as usize;
                    index.docs()[doc].doc_id.clone()
                })
                .collect();
            (q.clone(), docs)
        })
        .collect();
    evaluate(&run, qrels).1.ndcg_at_10
}

/// Fused candidates best first (ties by ordinal; retrieval breaks them by chunk id, which only
/// matters for exactly equal scores).
fn ranked(mut fused: Vec<fusion::Fused>) -> Vec<u32> {
    fusion::sort_best_first(&mut fused, |ordinal| ordinal);
    fused.iter().map(|f| f.ordinal).collect()
}

fn rrf(k: u32) -> impl Fn(&Ranked, &Ranked) -> Vec<u32> {
    move |b, v| ranked(fusion::rrf(b, v, k))
}

fn weighted(alpha: f64) -> impl Fn(&Ranked, &Ranked) -> Vec<u32> {
    move |b, v| ranked(fusion::weighted(b, v, alpha))
}

fn report(label: &str, index: &OpenIndex, cands: &Candidates, qrels: &Qrels) {
    let bm25 = ndcg(index, cands, qrels, |b, _| b.iter().map(|x| x.0).collect());
    let vector = ndcg(index, cands, qrels, |_, v| v.iter().map(|x| x.0).collect());
    let spec = &index.manifest().spec.fusion;
    let hybrid = match spec.method {
        FusionMethod::Rrf => ndcg(index, cands, qrels, rrf(spec.rrf_k)),
        FusionMethod::Weighted => ndcg(index, cands, qrels, weighted(spec.alpha)),
    };
    println!(
        "{label}: nDCG@10 bm25 {bm25:.4}  vector {vector:.4}  hybrid ({:?}, rrf_k {}, alpha {}) {hybrid:.4}",
        spec.method, spec.rrf_k, spec.alpha
    );
}

fn quality(models: &Models, dir: &Path, root: &Path, rebuild: bool, precision: Precision) {
    let mut spec = minilm_spec();
    // SciFact documents carry no ACL: let every reader see them.
    spec.default_acl = Some(Acl::new(vec![Principal::Public]));
    spec.embedding.precision = precision;
    println!(
        "SciFact build, spec specs/minilm.toml + default_acl [\"*\"], precision {}",
        precision.as_str()
    );
    let cold_dir = root.join("cold");
    let warm_dir = root.join("warm");
    if !rebuild {
        println!(" reusing the warm build in {}:", warm_dir.display());
        let (store, id, _) = build(&warm_dir, dir, models, &spec);
        let id = store.resolve_index(id.split('/').next().unwrap()).unwrap();
        evaluate_index(&store.open_index(&id).unwrap(), dir);
        return;
    }
    for d in [&cold_dir, &warm_dir] {
        if d.exists() {
            make_writable(d);
            std::fs::remove_dir_all(d).unwrap();
        }
    }
    println!(" cold cache:");
    let (_, cold_id, cold_secs) = build(&cold_dir, dir, models, &spec);
    std::fs::create_dir_all(&warm_dir).unwrap();
    std::fs::rename(cold_dir.join("embed-cache"), warm_dir.join("embed-cache")).unwrap();
    println!(" warm cache:");
    let (store, warm_id, warm_secs) = build(&warm_dir, dir, models, &spec);
    println!(
        " cold {cold_secs:.1} s, warm {warm_secs:.1} s; same index id and digest: {}",
        cold_id == warm_id
    );
    let id = store
        .resolve_index(cold_id.split('/').next().unwrap())
        .unwrap();
    evaluate_index(&store.open_index(&id).unwrap(), dir);
}

fn evaluate_index(index: &OpenIndex, dir: &Path) {
    let depth = 100;
    let test = quire_eval::dataset::load(dir, "test").unwrap();
    let test_cands = candidates(index, &test.queries, depth);
    report("test split (300 queries)", index, &test_cands, &test.qrels);

    let train_qrels = quire_eval::dataset::read_qrels(&dir.join("qrels/train.tsv")).unwrap();
    let all = quire_eval::dataset::read_queries(&dir.join("queries_all.jsonl")).unwrap();
    let train: BTreeMap<String, String> = train_qrels
        .keys()
        .filter_map(|q| Some((q.clone(), all.get(q)?.clone())))
        .collect();
    let train_cands = candidates(index, &train, depth);
    report(
        &format!("train split ({} queries)", train.len()),
        index,
        &train_cands,
        &train_qrels,
    );
    println!("fusion grid on the train split (nDCG@10):");
    for k in [5, 10, 20, 40, 60, 100] {
        println!(
            "  rrf k {k:>3}: {:.4}",
            ndcg(index, &train_cands, &train_qrels, rrf(k))
        );
    }
    for alpha in [0.2, 0.3, 0.4, 0.5, 0.6, 0.7] {
        println!(
            "  weighted alpha {alpha}: {:.4}",
            ndcg(index, &train_cands, &train_qrels, weighted(alpha))
        );
    }
}

fn make_writable(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        if path.is_dir() {
            make_writable(&path);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let want = |what: &str| {
        !args
            .iter()
            .any(|a| a == "speed" || a == "quality" || a == "eval")
            || args.iter().any(|a| a == what)
    };
    let Some(dir) = scifact() else {
        println!("skipping: ../shared/datasets/scifact is absent");
        return;
    };
    let models = Models::from_dir(&workspace().join("models")).unwrap();
    let embedding = EmbeddingSpec {
        model: "all-minilm-l6-v2".into(),
        dim: None,
        digest: None,
        include_title: false,
        precision: Default::default(),
    };
    let model = match models.resolve(&embedding) {
        Ok(model) => model,
        Err(e) => {
            println!("skipping: {e} (run scripts/fetch-model)");
            return;
        }
    };
    println!("model {} digest {}", model.model_id(), model.digest());
    if want("speed") {
        speed(model.as_ref(), &dir);
        let int8 = EmbeddingSpec {
            precision: Precision::Int8,
            ..embedding.clone()
        };
        speed(models.resolve(&int8).unwrap().as_ref(), &dir);
    }
    let precision = if args.iter().any(|a| a == "int8") {
        Precision::Int8
    } else {
        Precision::Fp32
    };
    // `eval` evaluates the index an earlier `quality` run left in QUIRE_BENCH_DIR.
    let eval_only = args.iter().any(|a| a == "eval");
    if want("quality") || eval_only {
        let (root, _tmp) = match std::env::var_os("QUIRE_BENCH_DIR") {
            Some(d) => (PathBuf::from(d), None),
            None => {
                let t = tempfile::tempdir().unwrap();
                (t.path().to_path_buf(), Some(t))
            }
        };
        quality(&models, &dir, &root, !eval_only, precision);
        if let Some(t) = _tmp {
            make_writable(t.path());
        }
    }
}
