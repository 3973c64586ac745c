//! `kill -9` of the PostgreSQL server (one of the test's own, `quire_testkit::pg::OwnServer`)
//! while a builder changes an alias, each change retried until acknowledged, and a replica
//! follows and answers queries: every change is applied exactly once and in order, the audit
//! chain verifies, the replica never fails a query and serves the last change within the
//! staleness bound once the server is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quire_index::Mode;
use quire_server::QuireApi;
use quire_store::AliasChange;
use quire_testkit::pg::OwnServer;
use quire_testkit::replicas::POLL;
use quire_testkit::server::query;

use super::{Cluster, Replica, set, two_indexes};

/// Alias changes the builder makes at least (it goes on until the server was killed twice).
const MIN_CHANGES: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_postgres_during_alias_changes_applies_each_once_and_replicas_catch_up() {
    let Some(s3) = quire_testkit::s3() else {
        return;
    };
    let Some(pg) = tokio::task::spawn_blocking(OwnServer::start).await.unwrap() else {
        return;
    };
    let pg = Arc::new(pg);
    let url = pg.url.clone();
    let cluster = tokio::task::spawn_blocking(move || Cluster::on(s3, url))
        .await
        .unwrap()
        .unwrap();
    let builder = Arc::new(cluster.builder("builder"));
    let (a, b) = two_indexes(&builder);
    let first = set(&builder, "prod", &a);
    let replica = Replica::start(&cluster, "replica", cluster.artifacts(None)).await;
    replica.wait_serving().await;
    set(&builder, "prod", &b); // both indices local on the replica: no fetch after this
    let first = first + 1;

    // A client of the replica all along.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicU64::new(0));
    let client = {
        let (client, stop, failed) = (replica.client().await, stop.clone(), failed.clone());
        tokio::spawn(async move {
            let mut answered = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let q = query("parental leave", &["all-staff"], Mode::Bm25, 3);
                match client.retrieve("prod", q, None).await {
                    Ok(_) => answered += 1,
                    Err(e) => {
                        eprintln!("a query failed: {e}");
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answered
        })
    };

    // The builder: changes one after another, each retried until acknowledged, until the
    // server has been killed twice (and started again) meanwhile.
    let killed = Arc::new(AtomicBool::new(false));
    let changer = {
        let (builder, a, b, killed) = (builder.clone(), a.clone(), b.clone(), killed.clone());
        tokio::task::spawn_blocking(move || {
            let (mut acked, mut failures) = (Vec::new(), 0u64);
            let mut n = 0u64;
            while n < MIN_CHANGES || !killed.load(Ordering::SeqCst) {
                let target = if n.is_multiple_of(2) {
                    a.clone()
                } else {
                    b.clone()
                };
                loop {
                    let change = AliasChange::Set(target.clone());
                    match builder.change_alias("prod", &change, "releaser", &format!("change {n}"))
                    {
                        Ok(revision) => {
                            acked.push((revision.revision, Instant::now()));
                            break;
                        }
                        Err(_) => {
                            failures += 1;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(3));
            }
            (acked, failures)
        })
    };
    let killer = {
        let pg = pg.clone();
        tokio::task::spawn_blocking(move || {
            for pause in [100, 200] {
                std::thread::sleep(Duration::from_millis(pause));
                pg.kill();
                std::thread::sleep(Duration::from_millis(300));
                pg.restart();
            }
            killed.store(true, Ordering::SeqCst);
        })
    };
    killer.await.unwrap();
    let (acked, failures) = changer.await.unwrap();
    let changes = acked.len() as u64;
    eprintln!("{changes} changes, {failures} attempts failed while the server was down");
    assert!(failures > 0, "the server was killed during the changes");

    // Each change exactly once, in order: revisions first + 1 ..= first + changes, and the
    // history says which change made each.
    let revisions: Vec<u64> = acked.iter().map(|(r, _)| *r).collect();
    assert_eq!(revisions, (first + 1..=first + changes).collect::<Vec<_>>());
    let history = builder.alias_history("prod").unwrap();
    assert_eq!(
        history.len() as u64,
        first + changes,
        "no change applied twice"
    );
    for (n, revision) in history[first as usize..].iter().enumerate() {
        assert_eq!(revision.reason, format!("change {n}"), "{revision:?}");
    }
    let verified = builder.audit_verify().unwrap();
    assert!(verified.ok, "{verified:?}");
    let events = builder.audit_events().unwrap();
    let sets = events.iter().filter(|e| e.action == "alias.set").count() as u64;
    assert_eq!(sets, first + changes, "one audit event per revision");

    // The replica serves the last change within the bound (poll interval + fetch time; both
    // indices are local, so the fetch is none) plus a reconnection's slack.
    let (last, acked_at) = *acked.last().unwrap();
    loop {
        let served = replica.store.alias("prod").map(|r| r.revision).unwrap_or(0);
        if served >= last {
            break;
        }
        assert!(
            acked_at.elapsed() < POLL + Duration::from_secs(3),
            "replica at revision {served}, {last} acknowledged {:?} ago",
            acked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "the replica served revision {last} {:?} after it was acknowledged",
        acked_at.elapsed()
    );
    // Its metrics saw the outage: rounds that could not read the registry.
    let failed_rounds = r#"quire_follow_rounds_total{result="error"}"#;
    let failed_rounds = replica.metric(failed_rounds).await.unwrap_or(0.0);
    assert!(failed_rounds >= 1.0, "{failed_rounds} failed rounds");
    stop.store(true, Ordering::SeqCst);
    let answered = client.await.unwrap();
    assert!(answered > 0);
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "the replica answered every query"
    );
    replica.stop().await;
    drop(builder);
}
