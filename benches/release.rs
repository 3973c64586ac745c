//! What release aliases cost: `Retrieve` latency over gRPC through an alias (plain, with a 10%
//! canary, with a shadow) against pinning the index id, and what clients see while a releaser
//! flips promote/rollback under load.
//!
//! The server runs in this process over a fresh data dir with the demo handbook and a second
//! handbook index (sentence chunking). 4 clients query concurrently for `QUIRE_RELEASE_SECS`
//! seconds per row (default 5).
//!
//! `cargo bench -p quire-benches --bench release`

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use quire_core::Reader;
use quire_index::{Mode, Query};
use quire_server::serve::{self, ServeOptions};
use quire_server::{QuireApi, ReleaseApi, Remote, ServerConfig};
use quire_store::AliasChangeRequest;
use tokio::sync::oneshot;

const CLIENTS: usize = 4;
const QUERIES: &[&str] = &[
    "parental leave weeks",
    "rollback a failed deploy",
    "how many sick days do I get",
    "expense reimbursement deadline",
    "lost corporate card",
    "incident severity levels",
];

fn query(i: usize) -> Query {
    Query {
        text: QUERIES[i % QUERIES.len()].into(),
        reader: Reader::new(Some("bench"), ["all-staff", "eng"]).unwrap(),
        k: 10,
        mode: Mode::Hybrid,
        fusion: None,
        candidates: None,
    }
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Query `target` from `CLIENTS` clients until `stop`, each with its own routing keys.
async fn load(url: &str, target: &str, stop: Arc<AtomicBool>) -> (Vec<u64>, u64) {
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = Remote::connect(url, None, None).await.unwrap();
        let (target, stop) = (target.to_owned(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let key = Some(format!("user-{c}-{i}"));
                match client.retrieve(&target, query(i), key).await {
                    Ok(_) => latencies.push(started.elapsed().as_micros() as u64),
                    Err(_) => errors += 1,
                }
                i += 1;
            }
            (latencies, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    (all, errors)
}

async fn timed(url: &str, target: &str, secs: Duration) -> (Vec<u64>, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn({
        let (url, target, stop) = (url.to_owned(), target.to_owned(), stop.clone());
        async move { load(&url, &target, stop).await }
    });
    tokio::time::sleep(secs).await;
    stop.store(true, Ordering::Relaxed);
    run.await.unwrap()
}

fn row(label: &str, (latencies, errors): &(Vec<u64>, u64), secs: Duration) {
    println!(
        "| {label:<34} | {:>8.0} | {:>7} | {:>7} | {:>6} |",
        latencies.len() as f64 / secs.as_secs_f64(),
        pct(latencies, 0.5),
        pct(latencies, 0.99),
        errors
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs = Duration::from_secs(
        std::env::var("QUIRE_RELEASE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = root.join("target/quire-bench/release-data");
    let _ = std::fs::remove_dir_all(&data);
    let options = ServeOptions {
        data,
        config: ServerConfig::default(),
        demo_corpus: Some(root.join("corpora/handbook")),
        demo_spec: None,
        models: Default::default(),
        artifacts: None,
    };
    let (local, metrics) = tokio::task::spawn_blocking(move || serve::prepare(&options))
        .await
        .unwrap()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(serve::run(
        local,
        ServerConfig::default(),
        metrics,
        listener,
        None,
        async {
            let _ = rx.await;
        },
    ));
    let admin = Remote::connect(&url, None, None).await.unwrap();
    let old = admin
        .index("handbook")
        .await
        .unwrap()
        .manifest
        .index_id
        .to_string();
    let snap = admin.snapshots().await.unwrap()[0].snapshot_id.to_string();
    let spec = "version = 1\n[chunking]\nstrategy = \"sentences\"\nmax_tokens = 64\n";
    let new = admin
        .build(&snap, Some(spec), Arc::new(quire_index::NoProgress))
        .await
        .unwrap()
        .manifest
        .index_id
        .to_string();
    let change = |c| async { admin.change_alias("prod", c, "bench", false).await.unwrap() };
    change(AliasChangeRequest::Set(old.clone())).await;
    timed(&url, "prod", Duration::from_secs(1)).await;

    println!(
        "\nRetrieve over gRPC, hybrid, k=10, {CLIENTS} clients, {secs:?} per row (latency in us)\n"
    );
    println!(
        "| {:<34} | {:>8} | {:>7} | {:>7} | {:>6} |",
        "target", "req/s", "p50", "p99", "errors"
    );
    println!("|{:-<36}|{:->10}|{:->9}|{:->9}|{:->8}|", "", "", "", "", "");
    row("index id (pinned)", &timed(&url, &old, secs).await, secs);
    row(
        "alias, primary only",
        &timed(&url, "prod", secs).await,
        secs,
    );
    change(AliasChangeRequest::Canary(new.clone(), 10.0)).await;
    row("alias, 10% canary", &timed(&url, "prod", secs).await, secs);
    change(AliasChangeRequest::ClearCanary).await;
    change(AliasChangeRequest::Shadow(new.clone())).await;
    row("alias, shadow on", &timed(&url, "prod", secs).await, secs);
    let report = admin.shadow_report("prod").await.unwrap();
    change(AliasChangeRequest::ClearShadow).await;

    // Promote/rollback every 50 ms while the clients query the alias.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = tokio::spawn({
        let (url, stop) = (url.clone(), stop.clone());
        async move { load(&url, "prod", stop).await }
    });
    let started = Instant::now();
    let mut flips = Vec::new();
    let mut i = 0;
    while started.elapsed() < secs {
        let c = if i % 2 == 0 {
            AliasChangeRequest::Set(new.clone())
        } else {
            AliasChangeRequest::Rollback(None)
        };
        let t = Instant::now();
        change(c).await;
        flips.push(t.elapsed().as_micros() as u64);
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let during = clients.await.unwrap();
    row("alias, flipping every 50 ms", &during, secs);
    flips.sort_unstable();
    println!(
        "\npromote/rollback RPC (commit + fsync + audit): {} flips, p50 {} us, p99 {} us",
        flips.len(),
        pct(&flips, 0.5),
        pct(&flips, 0.99)
    );
    println!(
        "shadow: compared {}, dropped {} (queue full), jaccard@10 mean {:.3}, rbo mean {:.3}, latency delta p50 {:.0} us",
        report.compared,
        report.dropped,
        report.jaccard.mean,
        report.rbo.mean,
        report.latency_delta_us.p50
    );
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}
