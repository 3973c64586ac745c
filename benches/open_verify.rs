//! What checking every file's blake3 costs when an index is opened for serving (issue 14,
//! item 6): `verify_files` alone against the whole `OpenIndex::open` (which includes it), on a
//! synthetic corpus (`synthetic.rs`, hash-v1) built once into `target/quire-bench/`. Files are
//! in the page cache (just built or read by the previous round): the numbers are hashing and
//! parsing, not the disk.
//!
//! `cargo bench -p quire-benches --bench open_verify -- [DOCS]` (default 20000 documents)

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Instant;

use quire_index::{OpenIndex, verify_files};
use quire_store::{Access, Store};

#[path = "synthetic.rs"]
mod synthetic;
use synthetic::{build_corpus, topic_corpus};

const ROUNDS: usize = 5;

fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[ROUNDS / 2]
}

fn main() {
    let docs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/quire-bench");
    std::fs::create_dir_all(&root).unwrap();
    let store = Store::open(root.join("data"), Access::Write).expect("data dir");
    let corpus = root.join(format!("open-verify-{docs}.jsonl"));
    let manifest = build_corpus(&store, &corpus, || topic_corpus(docs));
    let dir = store.index_dir(&manifest.index_id);
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    let threads = rayon::current_num_threads();
    let verify = median_ms(|| verify_files(&dir, &manifest).expect("verified"));
    let open = median_ms(|| drop(OpenIndex::open(&dir, store.models()).expect("open")));
    let mib = bytes as f64 / f64::from(1 << 20);
    println!(
        "\n{} chunks, {} files, {mib:.1} MiB; median of {ROUNDS}, {threads} rayon threads",
        manifest.counts.chunks,
        manifest.files.len()
    );
    println!("| step                         |      ms |");
    println!("|------------------------------|---------|");
    println!("| verify_files (blake3, sizes) | {verify:7.1} |");
    println!("| OpenIndex::open (with it)    | {open:7.1} |");
    println!("| open without verifying       | {:7.1} |", open - verify);
    println!(
        "verifying: {:.0} MiB/s, {:.0}% of the open",
        mib / (verify / 1e3),
        100.0 * verify / open
    );
}
