//! Replica servers following alias changes: both switch under load with no failed request and,
//! once every replica has been seen on a revision, no answer from an older one; changes are
//! refused; health is NOT_SERVING until the arms are local.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quire_core::IndexId;
use quire_index::Mode;
use quire_server::{QuireApi, ReleaseApi};
use quire_store::{AliasChangeRequest, Store};
use quire_testkit::server::query;
use tonic::Code;

use super::{Cluster, Replica, set, two_indexes};

/// Promote/rollback flips the builder makes while clients query.
const FLIPS: u64 = 100;

/// A cluster whose builder published two indices and pointed `prod` at the first; `None`
/// (skip) without the services.
async fn prod_on_a() -> Option<(Cluster, Arc<Store>, IndexId, IndexId)> {
    tokio::task::spawn_blocking(|| {
        let cluster = Cluster::new()?;
        let builder = Arc::new(cluster.builder("builder"));
        let (a, b) = two_indexes(&builder);
        set(&builder, "prod", &a);
        Some((cluster, builder, a, b))
    })
    .await
    .unwrap()
}

/// The index `replica` answers a query to `alias` from.
async fn answered_from(replica: &Replica, alias: &str) -> IndexId {
    let q = query("parental leave", &["all-staff"], Mode::Bm25, 3);
    let answer = replica.client().await.retrieve(alias, q, None).await;
    answer.unwrap().lineage.index_id
}

/// Wait until every replica serves `alias` at `revision` or later (a minute at most).
async fn converged(replicas: &[&Replica], alias: &str, revision: u64) {
    for replica in replicas {
        let mut seen = 0;
        for _ in 0..6000 {
            seen = replica.store.alias(alias).map(|r| r.revision).unwrap_or(0);
            if seen >= revision {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            seen >= revision,
            "replica {} stuck at revision {seen}",
            replica.addr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_switch_under_load_with_no_failure_and_no_stale_answer() {
    let Some(cluster) = tokio::task::spawn_blocking(Cluster::new).await.unwrap() else {
        return;
    };
    let builder = Arc::new(cluster.builder("builder"));
    let (a, b) = two_indexes(&builder);
    let first = set(&builder, "prod", &a);
    let one = Replica::start(&cluster, "one", cluster.artifacts(None)).await;
    let two = Replica::start(&cluster, "two", cluster.artifacts(None)).await;
    one.wait_serving().await;
    two.wait_serving().await;

    // Which index each revision serves, and the newest revision every replica has been seen on.
    let expected = Arc::new(Mutex::new(BTreeMap::from([(first, a.clone())])));
    let settled = Arc::new(AtomicU64::new(first));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for (n, replica) in [&one, &two, &one, &two].into_iter().enumerate() {
        let client = replica.client().await;
        let (expected, settled, stop) = (expected.clone(), settled.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let (mut answered, mut newest) = (0u64, 0u64);
            while !stop.load(Ordering::SeqCst) {
                let floor = settled.load(Ordering::SeqCst);
                let q = query("parental leave", &["all-staff"], Mode::Bm25, 3);
                let response = client
                    .retrieve("prod", q, Some(format!("client-{n}")))
                    .await
                    .unwrap_or_else(|e| panic!("client {n}: a request failed: {e}"));
                let lineage = &response.lineage;
                let revision = lineage.revision.expect("served through the alias");
                assert!(
                    revision >= floor,
                    "client {n}: revision {revision} answered after every replica served {floor}"
                );
                assert!(
                    revision >= newest,
                    "client {n}: revision {revision} after {newest}"
                );
                let index = expected.lock().unwrap().get(&revision).cloned();
                assert_eq!(
                    Some(&lineage.index_id),
                    index.as_ref(),
                    "revision {revision}"
                );
                newest = revision;
                answered += 1;
            }
            answered
        }));
    }
    for flip in 0..FLIPS {
        let target = if flip % 2 == 0 { b.clone() } else { a.clone() };
        // The one writer's next revision, known before a replica can serve it.
        let next = first + flip + 1;
        expected.lock().unwrap().insert(next, target.clone());
        let change = builder.clone();
        let revision = tokio::task::spawn_blocking(move || set(&change, "prod", &target))
            .await
            .unwrap();
        assert_eq!(revision, next);
        converged(&[&one, &two], "prod", revision).await;
        settled.store(revision, Ordering::SeqCst);
    }
    stop.store(true, Ordering::SeqCst);
    let mut answered = 0;
    for client in clients {
        answered += client.await.unwrap();
    }
    assert!(answered > 0);
    eprintln!("{answered} answers over {FLIPS} flips, none failed");

    // A replica refuses changes, naming its role.
    let refused = one
        .client()
        .await
        .change_alias("prod", AliasChangeRequest::Set(a.to_string()), "x", false)
        .await
        .expect_err("a replica changes nothing");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused}");
    assert!(
        refused.to_string().contains("read-only replica"),
        "{refused}"
    );
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_is_not_serving_until_every_arm_is_local() {
    let Some(cluster) = tokio::task::spawn_blocking(Cluster::new).await.unwrap() else {
        return;
    };
    let builder = cluster.builder("builder");
    let (a, _) = two_indexes(&builder);
    set(&builder, "prod", &a);
    let proxy = cluster.proxy();
    proxy.stall_after(0);
    let replica = Replica::start(
        &cluster,
        "replica",
        cluster.artifacts(Some(proxy.endpoint())),
    )
    .await;
    assert!(
        !replica.serving().await,
        "the store is down: nothing is local"
    );
    proxy.resume();
    replica.wait_serving().await;
    assert_eq!(answered_from(&replica, "prod").await, a);
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_listening_again_after_its_sessions_are_killed_catches_up() {
    let Some((cluster, builder, _, b)) = prod_on_a().await else {
        return;
    };
    // Polling so rare that only the notifications (and the re-read after reconnecting) can
    // bring the change.
    let mut config = cluster.replica_config();
    config.replica.poll_interval = Duration::from_secs(600);
    let replica = Replica::start_with(&cluster, "replica", cluster.artifacts(None), config).await;
    replica.wait_serving().await;
    let url = cluster.registry_url.clone();
    let killed = tokio::task::spawn_blocking(move || quire_testkit::pg::terminate_sessions(&url))
        .await
        .unwrap();
    assert!(killed > 0, "the replica's sessions were killed");
    let change = builder.clone();
    let revision = tokio::task::spawn_blocking(move || set(&change, "prod", &b))
        .await
        .unwrap();
    converged(&[&replica], "prod", revision).await;
    replica.stop().await;
}

/// Poll `replica`'s metric `name` until `ok` holds for it (20 s at most, then fail).
async fn metric_until(replica: &Replica, name: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let mut seen = None;
    for _ in 0..400 {
        seen = replica.metric(name).await;
        if let Some(value) = seen.filter(|v| ok(*v)) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} is {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicas_metrics_show_its_rounds_lag_and_fetches() {
    let Some((cluster, builder, a, b)) = prod_on_a().await else {
        return;
    };
    let mut proxy = cluster.proxy();
    let through = cluster.artifacts(Some(proxy.endpoint()));
    let replica = Replica::start(&cluster, "replica", through).await;
    replica.wait_serving().await;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = "quire_follow_last_success_timestamp_seconds";
    metric_until(&replica, last, |t| t >= started).await;
    let ok_rounds = r#"quire_follow_rounds_total{result="ok"}"#;
    assert!(replica.metric(ok_rounds).await.unwrap() >= 2.0);
    let lag = r#"quire_follow_revision_lag{alias="prod"}"#;
    assert_eq!(replica.metric(lag).await, Some(0.0));
    let fetched = r#"quire_index_fetches_total{result="ok"}"#;
    assert_eq!(replica.metric(fetched).await, Some(1.0), "A, once");
    let took = replica
        .metric("quire_index_fetch_seconds_sum")
        .await
        .unwrap();
    assert!(took > 0.0 && took < 60.0, "{took}");
    assert_eq!(
        replica.metric("quire_index_fetch_seconds_count").await,
        Some(1.0)
    );

    // The store goes away: the next revision cannot be fetched, so the alias lags by one and
    // the failed fetches are counted; A keeps serving.
    proxy.shut();
    let change = builder.clone();
    tokio::task::spawn_blocking(move || set(&change, "prod", &b))
        .await
        .unwrap();
    metric_until(&replica, lag, |l| l == 1.0).await;
    let failed = r#"quire_index_fetches_total{result="error"}"#;
    metric_until(&replica, failed, |n| n >= 1.0).await;
    assert_eq!(replica.metric(fetched).await, Some(1.0));
    assert_eq!(answered_from(&replica, "prod").await, a);
    replica.stop().await;
}
