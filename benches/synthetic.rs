//! Deterministic synthetic corpora shared by the benchmarks.

#![allow(dead_code)]

use quire_core::{Acl, Document};

/// A small xorshift generator: deterministic corpora without a dependency.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `n` documents of 200 words in 100 topics (70% of each document's words come from its topic's
/// 300-word vocabulary, the rest from a Zipf-like global one), so hash-v1 vectors cluster the way
/// real embeddings do. Document `i` is readable by `group:all` and by one of 1000 bucket groups
/// `group:b<i * 7919 mod 1000>`.
pub fn topic_corpus(n: usize) -> Vec<Document> {
    let mut rng = Rng(0x5EED_0FC0_FFEE);
    let vocab: Vec<String> = (0..20_000).map(|i| format!("w{i:x}")).collect();
    let topics: Vec<Vec<usize>> = (0..100)
        .map(|_| (0..300).map(|_| rng.below(vocab.len())).collect())
        .collect();
    (0..n)
        .map(|i| {
            let topic = &topics[rng.below(topics.len())];
            let words: Vec<&str> = (0..200)
                .map(|_| {
                    if rng.below(10) < 7 {
                        vocab[topic[rng.below(topic.len())]].as_str()
                    } else {
                        let u = rng.below(10_000) as f64 / 10_000.0;
                        vocab[(u * u * vocab.len() as f64) as usize].as_str()
                    }
                })
                .collect();
            let bucket = (i * 7919) % 1000;
            let acl = Acl::parse(["group:all".to_owned(), format!("group:b{bucket}")])
                .unwrap_or_default();
            Document {
                id: format!("doc-{i:07}"),
                title: None,
                metadata: Default::default(),
                acl: Some(acl),
                updated_at: None,
                text: format!("{}.", words.join(" ")),
            }
        })
        .collect()
}

/// Write `docs()` to `corpus_path` (when it is not there yet), import it into `store` and build it with the default
/// spec, printing how long that took. Returns the manifest.
pub fn build_corpus(
    store: &quire_store::Store,
    corpus_path: &std::path::Path,
    docs: impl FnOnce() -> Vec<Document>,
) -> quire_core::Manifest {
    if !corpus_path.exists() {
        println!("writing {}", corpus_path.display());
        let lines: Vec<String> = docs()
            .iter()
            .map(|d| String::from_utf8_lossy(&d.canonical_json()).into_owned())
            .collect();
        std::fs::write(corpus_path, lines.join("\n")).expect("write the corpus");
    }
    let started = std::time::Instant::now();
    let snap = store
        .import(corpus_path, Some(quire_store::CorpusFormat::Jsonl))
        .expect("import");
    let built = store
        .build(
            &snap.snapshot_id,
            &quire_core::BuildSpec::default(),
            &quire_index::NoProgress,
        )
        .expect("build");
    let m = built.manifest;
    println!(
        "index {} ({} chunks) ready in {:.1}s (reused: {})",
        m.index_id,
        m.counts.chunks,
        started.elapsed().as_secs_f64(),
        built.reused
    );
    m
}
