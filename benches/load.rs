//! Load test of the gRPC server: throughput and tail latency of `Retrieve` under concurrent
//! clients, written as a tonic load generator against a server running in this process.
//!
//! The server serves the demo handbook (as `handbook`) and the synthetic 100k-chunk index of
//! `benches/retrieval.rs` (by its full index id) from its own data dir,
//! `target/quire-bench/load-data` (a data dir has one writer at a time, so it does not share
//! `target/quire-bench/data` with the retrieval bench). The corpus file
//! `target/quire-bench/retrieval-100k.jsonl` is reused, or written with the same generator; the
//! first run builds the 100k index (a few minutes), later runs reuse it.
//!
//! Sections:
//! 1. hybrid retrieval, k = 10, at 1, 4 and 16 concurrent clients, per target;
//! 2. the handbook at 4 clients while a `BuildIndex` of the 100k snapshot (a non-default spec,
//!    whose index is deleted first so every run really builds it) runs on the same server;
//! 3. the same queries through `QuireApi::retrieve` on the `Local` directly, one client, to
//!    show what gRPC adds.
//!
//! `cargo bench -p quire-benches --bench load` (`QUIRE_LOAD_SECS` sets the length of each
//! measurement in seconds; default 5). Continuous evaluation's overhead on Retrieve: the
//! handbook goes through its alias, so `QUIRE_LOAD_SAMPLING=RATE` samples that share of the
//! handbook requests with intents and query text (1: every request, the worst case) and
//! remembers every one for feedback, and `QUIRE_LOAD_SAMPLING=0` (the default) turns both off;
//! compare the two runs' handbook rows. `QUIRE_LOAD_FEEDBACK=0|1` sets the feedback memory
//! on its own (default: on with sampling, off without).
//! Trace export's overhead: `QUIRE_LOAD_OTLP=1` installs the OTLP exporter of `[telemetry]
//! otlp_endpoint` (`quire_server::telemetry::install`), pointed at a receiver in this process
//! that keeps every span (so its decoding is counted as overhead too: the worst case on a
//! shared machine); `QUIRE_LOAD_OTLP=0` (the default) installs the same log layer at `warn`
//! without it. `QUIRE_LOAD_TRACE_RATIO` sets `[telemetry] sample_ratio` (default the
//! server's); the load's requests carry no `traceparent`, so the ratio decides. The run prints
//! how many spans arrived per request.
//! `QUIRE_LOAD_QUERY_THREADS=N` sets `[limits] query_threads` (Retrieve requests computing at
//! once; default one more than the cores). `QUIRE_LOAD_SKIP_BUILD=1` skips section 2. `QUIRE_LOAD_TARGETS=handbook` and
//! `QUIRE_LOAD_CLIENTS=16` (comma lists) narrow section 1 for repeated A/B pairs; sections 2 and
//! 3 run only when the rows they compare with were measured. The thread CPU clock every query
//! reads (its cost per read is printed) runs in both.

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quire_core::{BuildSpec, Reader};
use quire_index::{Mode, Query};
use quire_proto::pb;
use quire_proto::pb::build_index_event::Event;
use quire_server::serve::{self, ServeOptions};
use quire_server::{Local, QuireApi, ServerConfig};
use quire_store::Store;
use tokio::sync::oneshot;
use tonic::transport::{Channel, Endpoint};

#[path = "synthetic.rs"]
mod synthetic;
use synthetic::{build_corpus, topic_corpus};

/// Concurrent clients per measurement (`QUIRE_LOAD_CLIENTS` narrows it).
const CONCURRENCY: [usize; 3] = [1, 4, 16];
/// Clients while a build runs.
const BUILD_CLIENTS: usize = 4;
const K: u32 = 10;
/// A spec that differs from the default, so `BuildIndex` makes a new index.
const BUILD_SPEC: &str = "version = 1\n[hnsw]\nm = 8\nef_construction = 64\nef_search = 32\n";
/// Words per query on the 100k index.
const QUERY_WORDS: usize = 8;
const QUERIES_100K: usize = 50;
const DOCS: usize = 100_000;

const HANDBOOK_QUERIES: &[&str] = &[
    "parental leave weeks",
    "rollback a failed deploy",
    "how many sick days do I get",
    "expense reimbursement deadline",
    "lost corporate card",
    "401k employer match",
    "health insurance enrollment for dependents",
    "wellness stipend amount",
    "learning budget per year",
    "commuter benefits transit pass",
    "equity vesting schedule and cliff",
    "stock option exercise window after leaving",
    "remote work policy",
    "core working hours",
    "office locations",
    "company holidays this year",
    "laptop replacement request",
    "code of conduct reporting harassment",
    "meeting agenda guidelines",
    "communication norms response time",
    "glossary of internal terms",
    "travel booking and per diem",
    "code review approvals required",
    "service level objectives error budget",
    "on-call rotation handoff",
    "production access request",
    "feature flag cleanup",
    "database migration runbook",
    "incident postmortem template",
    "structured logging and tracing standards",
    "release versioning",
    "architecture decision records",
    "report a phishing email",
    "laptop disk encryption",
    "data classification levels",
    "password length and MFA",
    "acceptable use of company devices",
    "vulnerability disclosure",
    "interview process for hiring",
    "performance review cycle",
    "how to file a grievance",
    "relocation support moving costs",
    "offboarding checklist",
    "salary review and compensation bands",
    "signing an NDA",
    "open source license approval",
    "GDPR data subject request deadline",
    "data retention and deletion",
    "purchase approval thresholds",
    "invoice payment terms",
];

/// One index under load: what to send and as whom.
struct Target {
    label: &'static str,
    target: String,
    groups: Vec<String>,
    queries: Vec<String>,
}

impl Target {
    fn request(&self, i: usize) -> pb::RetrieveRequest {
        const INTENTS: [&str; 4] = ["benefits", "engineering", "hr", "security"];
        pb::RetrieveRequest {
            target: self.target.clone(),
            query: self.queries[i % self.queries.len()].clone(),
            principal: Some(pb::Principal {
                user: String::new(),
                groups: self.groups.clone(),
            }),
            k: K,
            mode: pb::Mode::Hybrid as i32,
            fusion: pb::Fusion::Unspecified as i32,
            candidates: 0,
            routing_key: String::new(),
            explain: false,
            intent: INTENTS[i % INTENTS.len()].to_owned(),
        }
    }

    fn query(&self, i: usize) -> Query {
        Query {
            text: self.queries[i % self.queries.len()].clone(),
            reader: Reader::new(None, &self.groups).unwrap(),
            k: K as usize,
            mode: Mode::Hybrid,
            fusion: None,
            candidates: None,
        }
    }
}

/// The outcome of one measurement.
struct Run {
    /// Latencies of the successful requests, microseconds, sorted.
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

impl Run {
    fn new(per_client: Vec<(Vec<u64>, u64, Option<String>)>, elapsed: Duration) -> Self {
        let mut latencies_us = Vec::new();
        let mut errors = 0;
        let mut first_error = None;
        for (lat, err, first) in per_client {
            latencies_us.extend(lat);
            errors += err;
            first_error = first_error.or(first);
        }
        latencies_us.sort_unstable();
        Self {
            latencies_us,
            errors,
            first_error,
            elapsed,
        }
    }

    fn rps(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> u64 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        self.latencies_us[((self.latencies_us.len() - 1) as f64 * p).round() as usize]
    }

    fn row(&self, label: &str, clients: usize) {
        println!(
            "| {label:<18} | {clients:>7} | {:>8} | {:>8.0} | {:>8} | {:>8} | {:>8} | {:>6} |",
            self.latencies_us.len(),
            self.rps(),
            self.pct(0.5),
            self.pct(0.99),
            self.latencies_us.last().copied().unwrap_or(0),
            self.errors
        );
        if let Some(e) = &self.first_error {
            println!("|   first error: {e}");
        }
    }
}

fn table_header() {
    println!(
        "| target             | clients | requests |    req/s |   p50 us |   p99 us |   max us | errors |"
    );
    println!(
        "|--------------------|---------|----------|----------|----------|----------|----------|--------|"
    );
}

/// `clients` tasks, each with its own clone of the client, sending `Retrieve` back to back
/// until `duration` has passed.
async fn grpc_load(
    channel: &Channel,
    target: &Arc<Target>,
    clients: usize,
    duration: Duration,
) -> Run {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let mut client =
                pb::retrieval_service_client::RetrievalServiceClient::new(channel.clone());
            let target = target.clone();
            tokio::spawn(async move {
                let (mut lat, mut errors, mut first_error) = (Vec::new(), 0u64, None);
                // Spread the clients over the query list.
                let mut i = c * target.queries.len() / clients;
                while Instant::now() < deadline {
                    let request = target.request(i);
                    i += 1;
                    let sent = Instant::now();
                    match client.retrieve(request).await {
                        Ok(_) => lat.push(sent.elapsed().as_micros() as u64),
                        Err(status) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| status.to_string());
                        }
                    }
                }
                (lat, errors, first_error)
            })
        })
        .collect();
    let mut per_client = Vec::new();
    for task in tasks {
        per_client.push(task.await.expect("client task"));
    }
    Run::new(per_client, started.elapsed())
}

/// One client calling [`Local`] directly, no gRPC.
async fn local_load(local: &Local, target: &Target, duration: Duration) -> Run {
    let started = Instant::now();
    let deadline = started + duration;
    let (mut lat, mut errors, mut first_error) = (Vec::new(), 0u64, None);
    let mut i = 0;
    while Instant::now() < deadline {
        let query = target.query(i);
        i += 1;
        let sent = Instant::now();
        match local.retrieve(&target.target, query, None).await {
            Ok(_) => lat.push(sent.elapsed().as_micros() as u64),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Run::new(vec![(lat, errors, first_error)], started.elapsed())
}

/// Send every query once (opens the index, warms caches); returns the first request's latency.
async fn warm_up(channel: &Channel, target: &Target) -> Duration {
    let mut client = pb::retrieval_service_client::RetrievalServiceClient::new(channel.clone());
    let mut first = None;
    for i in 0..target.queries.len() {
        let sent = Instant::now();
        client
            .retrieve(target.request(i))
            .await
            .unwrap_or_else(|e| panic!("warm-up of {}: {e}", target.label));
        first.get_or_insert(sent.elapsed());
    }
    first.unwrap_or_default()
}

/// 8-word queries cut from documents spread over the first lines of the corpus file.
fn corpus_queries(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).expect("corpus file");
    std::io::BufReader::new(file)
        .lines()
        .step_by(97)
        .take(QUERIES_100K)
        .enumerate()
        .map(|(i, line)| {
            let doc: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            let words: Vec<&str> = doc["text"]
                .as_str()
                .unwrap()
                .split_whitespace()
                .map(|w| w.trim_end_matches('.'))
                .collect();
            let at = (i * 13) % (words.len() - QUERY_WORDS);
            words[at..at + QUERY_WORDS].join(" ")
        })
        .collect()
}

/// The server's configuration: with a sampling `rate` above 0, that share of the requests
/// through an alias is sampled (with its query text); with `feedback`, every one is remembered
/// for feedback.
fn evaluation_config(rate: f64, feedback: bool, telemetry: &str) -> ServerConfig {
    let mut toml = "version = 1\n".to_owned();
    if rate > 0.0 {
        toml += &format!(
            "[sampling]\nrate = {rate}\nstore_text = true\n\
             cap_per_intent_per_hour = 100000\nmax_per_hour = 1000000\n"
        );
    }
    if !feedback {
        toml += "[feedback]\nremember = 0\n";
    }
    if let Ok(threads) = std::env::var("QUIRE_LOAD_QUERY_THREADS") {
        toml += &format!("[limits]\nquery_threads = {threads}\n");
        println!("limits.query_threads = {threads}");
    }
    println!(
        "continuous evaluation: sampling {}, feedback memory {}",
        if rate > 0.0 {
            format!("at rate {rate} with query text")
        } else {
            "off".to_owned()
        },
        if feedback { "on (the default)" } else { "off" }
    );
    ServerConfig::from_toml(&format!("{toml}{telemetry}"), "load bench").expect("config")
}

/// What one read of the thread CPU clock costs (each query reads it about a dozen times).
fn print_cpu_clock_cost() {
    const READS: u32 = 200_000;
    let started = Instant::now();
    let mut sum = 0u64;
    for _ in 0..READS {
        sum = sum.wrapping_add(quire_index::cpu::CpuClock::start().elapsed_us());
    }
    std::hint::black_box(sum);
    println!(
        "thread CPU clock: {:.0} ns per start-and-read pair",
        started.elapsed().as_nanos() as f64 / f64::from(READS)
    );
}

/// Delete a published index (its files are read-only).
fn remove_index(dir: &Path) {
    fn writable(path: &Path) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                writable(&entry.unwrap().path());
            }
        }
        let mut perms = std::fs::metadata(path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(path, perms).unwrap();
    }
    writable(dir);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A comma list from the environment, or `default` when unset.
fn env_list<T: std::str::FromStr + Clone>(name: &str, default: &[T]) -> Vec<T> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: {x:?} is not valid"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

fn main() {
    let secs: f64 = std::env::var("QUIRE_LOAD_SECS")
        .ok()
        .map(|s| s.parse().expect("QUIRE_LOAD_SECS: seconds"))
        .unwrap_or(5.0);
    let duration = Duration::from_secs_f64(secs);
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = workspace.join("target/quire-bench");
    std::fs::create_dir_all(&root).unwrap();

    println!("# quire gRPC load test\n");
    println!(
        "machine: {} hardware threads ({} {}); clients and server share them; {secs} s per measurement",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::OS,
        std::env::consts::ARCH,
    );

    let sampling: f64 = std::env::var("QUIRE_LOAD_SAMPLING")
        .ok()
        .map(|s| s.parse().expect("QUIRE_LOAD_SAMPLING: a rate from 0 to 1"))
        .unwrap_or(0.0);
    let otlp = std::env::var("QUIRE_LOAD_OTLP").is_ok_and(|v| v == "1");
    let labels: Vec<String> = env_list("QUIRE_LOAD_TARGETS", &["handbook".into(), "100k".into()]);
    let concurrency: Vec<usize> = env_list("QUIRE_LOAD_CLIENTS", &CONCURRENCY);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // The receiver serves on the runtime's workers from here on.
    let receiver = otlp.then(|| runtime.block_on(quire_testkit::otlp::OtlpReceiver::start()));
    let trace_ratio: f64 = std::env::var("QUIRE_LOAD_TRACE_RATIO")
        .ok()
        .map(|s| {
            s.parse()
                .expect("QUIRE_LOAD_TRACE_RATIO: a share from 0 to 1")
        })
        .unwrap_or(quire_server::telemetry::DEFAULT_SAMPLE_RATIO);
    let telemetry_toml = receiver.as_ref().map_or(String::new(), |r| {
        format!(
            "[telemetry]\notlp_endpoint = \"{}\"\nsample_ratio = {trace_ratio}\n",
            r.endpoint()
        )
    });
    // The feedback memory follows sampling unless told otherwise.
    let feedback = std::env::var("QUIRE_LOAD_FEEDBACK").map_or(sampling > 0.0, |v| v == "1");
    let config = evaluation_config(sampling, feedback, &telemetry_toml);
    print_cpu_clock_cost();
    let started = Instant::now();
    let options = ServeOptions {
        data: root.join("load-data"),
        config: config.clone(),
        demo_corpus: Some(workspace.join("corpora/handbook")),
        demo_spec: None,
        models: Default::default(),
        artifacts: None,
    };
    let (local, metrics) = serve::prepare(&options).expect("prepare the server");
    println!("handbook ready in {:.1}s", started.elapsed().as_secs_f64());

    let corpus_path = root.join("retrieval-100k.jsonl");
    let store = local.store().clone();
    let manifest = build_corpus(&store, &corpus_path, || topic_corpus(DOCS));
    // The build under load must really build: drop what an earlier run left.
    let build_spec = BuildSpec::from_toml(BUILD_SPEC, "load bench spec").expect("spec");
    let old = store.index_dir(&Store::index_id_for(&manifest.snapshot_id, &build_spec));
    if old.exists() {
        println!(
            "removing the index an earlier run built under load: {}",
            old.display()
        );
        remove_index(&old);
    }
    drop(store);

    let targets: Vec<Arc<Target>> = [
        Arc::new(Target {
            label: "handbook",
            target: serve::DEMO_NAME.to_owned(),
            groups: vec!["all-staff".into()],
            queries: HANDBOOK_QUERIES.iter().map(|q| (*q).to_owned()).collect(),
        }),
        Arc::new(Target {
            label: "100k",
            target: manifest.index_id.to_string(),
            groups: vec!["all".into()],
            queries: corpus_queries(&corpus_path),
        }),
    ]
    .into_iter()
    .filter(|t| labels.iter().any(|l| l == t.label))
    .collect();
    let snapshot_id = manifest.snapshot_id.to_string();

    runtime.block_on(async move {
        let endpoint = config.telemetry.otlp_endpoint.clone();
        let telemetry =
            quire_server::telemetry::install("warn", endpoint.as_deref()).expect("telemetry");
        println!(
            "trace export: {}",
            endpoint.as_deref().map_or("off (log layer at warn only)".to_owned(), |e| format!(
                "OTLP/gRPC to a receiver in this process at {e}, sample_ratio {}",
                config.telemetry.sample_ratio
            ))
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve::run(
            local.clone(),
            config,
            metrics,
            listener,
            None,
            async {
                let _ = stopped.await;
            },
        ));
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connect");
        println!("serving on {addr}\n");

        println!("## 1. Retrieve over gRPC (hybrid, k = {K}, one HTTP/2 connection shared by the clients)\n");
        for t in &targets {
            let first = warm_up(&channel, t).await;
            println!(
                "{}: target `{}`, {} queries, groups {:?}; warm-up's first request took {:.1} ms",
                t.label,
                t.target,
                t.queries.len(),
                t.groups,
                first.as_secs_f64() * 1e3
            );
        }
        if let Some(t) = targets.iter().find(|t| t.label == "100k") {
            println!("100k query example: {:?}", t.queries[0]);
        }
        println!();
        table_header();
        let mut grpc = BTreeMap::new();
        for t in &targets {
            for &clients in &concurrency {
                let run = grpc_load(&channel, t, clients, duration).await;
                run.row(t.label, clients);
                grpc.insert((t.label, clients), run);
            }
        }

        if std::env::var("QUIRE_LOAD_SKIP_BUILD").is_ok_and(|v| v == "1") {
            println!("\n## 2. skipped (QUIRE_LOAD_SKIP_BUILD=1)");
        } else if !grpc.contains_key(&("handbook", BUILD_CLIENTS)) {
            println!("\n## 2. skipped (handbook at {BUILD_CLIENTS} clients not measured)");
        } else {
        println!("\n## 2. Handbook at {BUILD_CLIENTS} clients while BuildIndex runs\n");
        println!("BuildIndex on {snapshot_id} with spec {BUILD_SPEC:?}");
        let mut index_client = pb::index_service_client::IndexServiceClient::new(channel.clone());
        let build_started = Instant::now();
        let mut events = index_client
            .build_index(pb::BuildIndexRequest {
                snapshot_id: snapshot_id.clone(),
                spec_toml: BUILD_SPEC.to_owned(),
            })
            .await
            .expect("BuildIndex")
            .into_inner();
        let (running, build_running) = oneshot::channel::<()>();
        let build = tokio::spawn(async move {
            let mut running = Some(running);
            let mut stages: Vec<(Instant, String)> = Vec::new();
            loop {
                match events.message().await {
                    Ok(Some(pb::BuildIndexEvent { event: Some(event) })) => match event {
                        Event::Stage(stage) => {
                            if let Some(tx) = running.take() {
                                let _ = tx.send(());
                            }
                            stages.push((Instant::now(), stage.name));
                        }
                        Event::Result(result) => {
                            let id = result.manifest.map(|m| m.index_id).unwrap_or_default();
                            return Ok((Instant::now(), id, result.reused, stages));
                        }
                        Event::Queued(_)
                        | Event::Advance(_)
                        | Event::EmbedCache(_)
                        | Event::Reused(_) => {}
                    },
                    Ok(Some(_)) => {}
                    Ok(None) => return Err("the stream ended without a result".to_owned()),
                    Err(status) => return Err(status.to_string()),
                }
            }
        });
        // Measure once the build is past the queue and working (or has ended).
        let _ = tokio::time::timeout(Duration::from_secs(60), build_running).await;
        let measure_start = Instant::now();
        let during = grpc_load(&channel, &targets[0], BUILD_CLIENTS, duration).await;
        let measure_end = Instant::now();
        table_header();
        grpc[&("handbook", BUILD_CLIENTS)].row("handbook (idle)", BUILD_CLIENTS);
        during.row("handbook (build)", BUILD_CLIENTS);
        println!();
        match build.await.expect("build task") {
            Ok((finished, id, reused, stages)) => {
                let overlapping: Vec<&str> = stages
                    .iter()
                    .enumerate()
                    .filter(|(i, (at, _))| {
                        let end = stages.get(i + 1).map_or(finished, |s| s.0);
                        *at < measure_end && end > measure_start
                    })
                    .map(|(_, (_, name))| name.as_str())
                    .collect();
                println!(
                    "build of {id} (reused: {reused}) took {:.1}s; it {} the measurement ended; stages during the measurement: {}",
                    (finished - build_started).as_secs_f64(),
                    if finished <= measure_end {
                        "finished BEFORE"
                    } else {
                        "was still running when"
                    },
                    if overlapping.is_empty() {
                        "none".to_owned()
                    } else {
                        overlapping.join(", ")
                    }
                );
            }
            Err(e) => println!("build failed: {e}"),
        }
        }

        if !concurrency.contains(&1) {
            println!("\n## 3. skipped (1 client not measured)");
        } else {
        println!("\n## 3. gRPC vs in-process (QuireApi::retrieve on Local), 1 client\n");
        println!(
            "| target   | gRPC p50 us | local p50 us | diff p50 us | gRPC p99 us | local p99 us | diff p99 us | gRPC req/s | local req/s |"
        );
        println!(
            "|----------|-------------|--------------|-------------|-------------|--------------|-------------|------------|-------------|"
        );
        for t in &targets {
            let local_run = local_load(&local, t, duration).await;
            let g = &grpc[&(t.label, 1)];
            println!(
                "| {:<8} | {:>11} | {:>12} | {:>11} | {:>11} | {:>12} | {:>11} | {:>10.0} | {:>11.0} |",
                t.label,
                g.pct(0.5),
                local_run.pct(0.5),
                g.pct(0.5) as i64 - local_run.pct(0.5) as i64,
                g.pct(0.99),
                local_run.pct(0.99),
                g.pct(0.99) as i64 - local_run.pct(0.99) as i64,
                g.rps(),
                local_run.rps()
            );
            if local_run.errors > 0 {
                println!(
                    "|   {} local errors, first: {}",
                    local_run.errors,
                    local_run.first_error.unwrap_or_default()
                );
            }
        }
        }

        drop(channel);
        let _ = stop.send(());
        match tokio::time::timeout(Duration::from_secs(30), server).await {
            Ok(Ok(Ok(()))) => println!("\nserver shut down cleanly"),
            Ok(Ok(Err(e))) => println!("\nserver stopped with an error: {e}"),
            Ok(Err(e)) => println!("\nserver task failed: {e}"),
            Err(_) => println!("\nserver did not stop within 30 s"),
        }
        let requests: usize = grpc.values().map(|r| r.latencies_us.len()).sum();
        tokio::task::spawn_blocking(move || telemetry.shutdown())
            .await
            .expect("telemetry shutdown");
        if let Some(receiver) = receiver {
            let spans = receiver.count();
            println!(
                "spans received: {spans} for {requests} section-1 requests ({:.1} per request; sections 2 and 3 add theirs)",
                spans as f64 / requests.max(1) as f64
            );
        }
    });
}
