//! Replicas following alias changes (issue 15): how long from an alias change until every
//! replica serves the new revision, and Retrieve throughput with one replica against two.
//!
//! A builder and two replica servers in this process, on the test PostgreSQL and SeaweedFS
//! (`scripts/test-services start`), each replica with its own data dir and the default poll
//! interval (2 s; notifications usually arrive first). The latency of a change is from just
//! before the builder commits it until both replicas serve it (their alias tables, read every
//! millisecond); both indices are fetched by the first flips, so later ones take no fetch.
//! Throughput: `QUIRE_BENCH_CLIENTS` gRPC clients (default 8) querying `prod` for
//! `QUIRE_BENCH_SECS` seconds (default 5), all on one replica, then spread over both. On a
//! 2-core machine the two replicas share the cores, so this shows the cost of a second
//! replica rather than a second machine's capacity.
//!
//! `cargo bench -p quire-benches --bench replicas` (`QUIRE_BENCH_FLIPS`, default 100)

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quire_index::Mode;
use quire_server::QuireApi;
use quire_testkit::replicas::{Cluster, Replica, set, two_indexes};
use quire_testkit::server::query;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let Some(cluster) = tokio::task::spawn_blocking(Cluster::new).await.unwrap() else {
        println!("no test services: run `scripts/test-services start` first");
        return;
    };
    let builder = Arc::new(cluster.builder("builder"));
    let (a, b) = two_indexes(&builder);
    set(&builder, "prod", &a);
    let mut replica_config = cluster.replica_config();
    replica_config.replica.poll_interval = quire_store::DEFAULT_POLL_INTERVAL;
    let one = Replica::start_with(
        &cluster,
        "one",
        cluster.artifacts(None),
        replica_config.clone(),
    )
    .await;
    let two = Replica::start_with(&cluster, "two", cluster.artifacts(None), replica_config).await;
    one.wait_serving().await;
    two.wait_serving().await;

    let flips = env("QUIRE_BENCH_FLIPS", 100);
    let (mut commits, mut everywhere) = (Vec::new(), Vec::new());
    for flip in 0..flips {
        let index = if flip % 2 == 0 { b.clone() } else { a.clone() };
        let change = builder.clone();
        let started = Instant::now();
        let revision = tokio::task::spawn_blocking(move || set(&change, "prod", &index))
            .await
            .unwrap();
        commits.push(started.elapsed());
        for replica in [&one, &two] {
            while replica.store.alias("prod").map(|r| r.revision).unwrap_or(0) < revision {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        everywhere.push(started.elapsed());
    }
    commits.sort();
    everywhere.sort();
    println!("alias change to all replicas, {flips} flips, 2 replicas");
    println!(
        "  commit on the builder      p50 {:7.2} ms  p99 {:7.2} ms",
        ms(percentile(&commits, 0.5)),
        ms(percentile(&commits, 0.99))
    );
    println!(
        "  served by both replicas    p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms",
        ms(percentile(&everywhere, 0.5)),
        ms(percentile(&everywhere, 0.99)),
        ms(*everywhere.last().unwrap())
    );

    let clients = env("QUIRE_BENCH_CLIENTS", 8) as usize;
    let secs = env("QUIRE_BENCH_SECS", 5);
    for targets in [vec![&one], vec![&one, &two]] {
        let (rate, p50, p99) = throughput(&targets, clients, Duration::from_secs(secs)).await;
        println!(
            "Retrieve, {clients} clients over {} replica(s): {rate:8.0} req/s  p50 {p50:.2} ms  p99 {p99:.2} ms",
            targets.len()
        );
    }
    one.stop().await;
    two.stop().await;
}

/// `clients` clients spread over `targets`, querying `prod` for `length`: (requests per
/// second, p50 ms, p99 ms).
async fn throughput(targets: &[&Replica], clients: usize, length: Duration) -> (f64, f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for n in 0..clients {
        let client = targets[n % targets.len()].client().await;
        let (stop, failed) = (stop.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let q = query("parental leave", &["all-staff"], Mode::Bm25, 5);
                let started = Instant::now();
                if client.retrieve("prod", q, None).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                latencies.push(started.elapsed());
            }
            latencies
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed");
    all.sort();
    (
        all.len() as f64 / elapsed,
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
    )
}
