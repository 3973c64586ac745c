//! What one registry change costs: an alias change (one transaction with its audit event)
//! committed to the data dir's redb file against the PostgreSQL registry, one writer after
//! another, then two writers at once.
//!
//! PostgreSQL is the test server (`scripts/test-services start`, or `QUIRE_TEST_POSTGRES_URL`);
//! each run uses a fresh database. The server's `fsync` and `synchronous_commit` are printed:
//! the test server runs with `fsync = off`, redb always syncs, so compare with `fsync = on`
//! too (`ALTER SYSTEM SET fsync = on; SELECT pg_reload_conf();`).
//!
//! `cargo bench -p quire-benches --bench registry` (`QUIRE_REGISTRY_CHANGES`, default 500)

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use quire_core::IndexId;
use quire_registry_pg::{PgOptions, PgRegistry};
use quire_release::{AliasChange, AuditDraft};
use quire_store::{Access, Registry};

fn idx(n: u8) -> IndexId {
    format!("idx-{}", format!("{n:02x}").repeat(32))
        .parse()
        .unwrap()
}

/// One alias change, as the store makes it: revise the history, audit it.
fn change(registry: &dyn Registry, alias: &str, n: u64) {
    let change = AliasChange::Set(idx(1 + (n % 2) as u8));
    registry
        .commit_alias(alias, &mut |history, _| {
            let revision = change.revise(alias, history, "t".into(), "bench", "bench")?;
            let draft = AuditDraft {
                actor: "bench".into(),
                action: "alias.set".into(),
                target: alias.into(),
                reason: "bench".into(),
                ..AuditDraft::default()
            };
            Ok((revision, draft))
        })
        .unwrap();
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

fn sequential(label: &str, registry: &dyn Registry, n: u64) {
    for i in 0..20 {
        change(registry, "warmup", i);
    }
    let mut times: Vec<Duration> = (0..n)
        .map(|i| {
            let start = Instant::now();
            change(registry, "a", i);
            start.elapsed()
        })
        .collect();
    times.sort();
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e3 / n as f64;
    println!(
        "| {label} | one writer | {:.3} | {:.3} | {mean:.3} | {:.0} |",
        pct(&times, 0.5),
        pct(&times, 0.99),
        1e3 / mean
    );
}

fn concurrent(label: &str, registries: [&dyn Registry; 2], n: u64) {
    let start = Instant::now();
    std::thread::scope(|s| {
        for (t, r) in registries.into_iter().enumerate() {
            s.spawn(move || {
                for i in 0..n / 2 {
                    change(r, "b", i * 2 + t as u64);
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "| {label} | two writers, one alias | | | {:.3} | {:.0} |",
        secs * 1e3 / n as f64,
        n as f64 / secs
    );
}

fn main() {
    let n: u64 = std::env::var("QUIRE_REGISTRY_CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    println!("{n} alias changes per row; ms per change\n");
    println!("| registry | writers | p50 | p99 | mean | changes/s |");
    println!("|---|---|---|---|---|---|");
    let dir = tempfile::TempDir::new().unwrap();
    let redb = quire_store::open_redb_registry(dir.path(), Access::Write).unwrap();
    sequential("redb (data dir, fsync)", &*redb, n);
    // redb has one writer per data dir: two threads share it (the store's own lock order).
    concurrent("redb (data dir, fsync)", [&*redb, &*redb], n);
    let Some(url) = quire_testkit::pg::fresh_database() else {
        println!("\nno PostgreSQL: run scripts/test-services start");
        return;
    };
    let options = PgOptions {
        migrate: true,
        ..PgOptions::default()
    };
    let pg = PgRegistry::connect(&url.parse().unwrap(), options).unwrap();
    let other = PgRegistry::connect(&url.parse().unwrap(), options).unwrap();
    let label = format!("PostgreSQL ({})", settings(&url));
    sequential(&label, &pg, n);
    concurrent(&label, [&pg, &other], n);
}

/// The server's durability settings, e.g. `fsync=off, synchronous_commit=on`.
fn settings(url: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut out = Vec::new();
        for name in ["fsync", "synchronous_commit"] {
            let row = client
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .unwrap();
            out.push(format!("{name}={}", row.get::<_, String>(0)));
        }
        out.join(", ")
    })
}
