//! Cold fetch of an index from an S3 store: upload it once, then fetch it into fresh data dirs
//! (every file streamed, hashed on the fly and fsynced, the content digest recomputed, one
//! rename), as a machine without the index does on first use.
//!
//! The store is the test SeaweedFS (`scripts/test-services start`), on loopback: the numbers
//! are quire's side of a fetch (requests, hashing, writing, fsync), not a network's. The index
//! is INDEX_DIR, else the synthetic 100k-chunk index of `--bench retrieval` (built into
//! `target/quire-bench/` when missing, and reused).
//!
//! `cargo bench -p quire-benches --bench store_fetch [-- INDEX_DIR]` (`QUIRE_FETCH_RUNS`,
//! default 3)

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use quire_store::artifacts::transfer;
use quire_store::{Access, ArtifactStore, Store};
use quire_store_s3::{Credentials, S3Config, S3Store};

#[path = "synthetic.rs"]
mod synthetic;

fn index_dir() -> PathBuf {
    if let Some(dir) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        return PathBuf::from(dir);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/quire-bench");
    let store = Store::open(root.join("data"), Access::Write).expect("data dir");
    let manifest = synthetic::build_corpus(&store, &root.join("retrieval-100k.jsonl"), || {
        synthetic::topic_corpus(100_000)
    });
    store.index_dir(&manifest.index_id)
}

fn main() {
    let Some(s3) = quire_testkit::s3() else {
        println!("no test S3 store: run `scripts/test-services start` first");
        return;
    };
    let runs: usize = std::env::var("QUIRE_FETCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = index_dir();
    let mut config = S3Config::new(&s3.url, Some(&s3.endpoint), None).unwrap();
    config.url = config
        .url
        .with_subprefix(&quire_testkit::paths::unique("bench"))
        .unwrap();
    let credentials = Credentials::new(&s3.access_key_id, &s3.secret_access_key, None);
    let store: Arc<dyn ArtifactStore> = Arc::new(S3Store::connect(&config, &credentials).unwrap());

    let started = Instant::now();
    let (manifest, _) = transfer::upload_index(&*store, &dir).expect("upload");
    let upload = started.elapsed().as_secs_f64();
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    let mib = bytes as f64 / (1 << 20) as f64;
    println!(
        "index {} ({} chunks, {} files, {mib:.1} MiB) to {}",
        manifest.index_id,
        manifest.counts.chunks,
        manifest.files.len(),
        store.location()
    );
    println!("upload      {upload:7.2} s  {:7.1} MiB/s", mib / upload);

    let mut times = Vec::new();
    for run in 0..runs {
        let tmp = tempfile::TempDir::new().unwrap();
        let data = Store::open(tmp.path(), Access::Write)
            .unwrap()
            .with_artifacts(store.clone());
        let started = Instant::now();
        data.fetch_index(&manifest.index_id, Some(&manifest.content_digest))
            .expect("fetch");
        let took = started.elapsed().as_secs_f64();
        println!("cold fetch {run} {took:7.2} s  {:7.1} MiB/s", mib / took);
        times.push(took);
    }
    times.sort_by(f64::total_cmp);
    if let (Some(min), Some(max)) = (times.first(), times.last()) {
        let p50 = times[times.len() / 2];
        println!("cold fetch  p50 {p50:.2} s, min {min:.2} s, max {max:.2} s ({runs} runs)");
    }
    transfer::remove_index_build(&*store, &manifest.index_id, &manifest.content_digest)
        .expect("clean up");
}
