//! Fetches from a store that stops answering mid-transfer, or is down: the error arrives within
//! the configured timeouts, names the store, and leaves nothing partial in the data dir; once
//! the store is back, the same data dir fetches the index.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quire_store::artifacts::conformance::{build_small_index, data_dir};
use quire_store::{ArtifactStore, StoreError};
use quire_store_s3::{S3Config, Timeouts};

use quire_testkit::proxy::Proxy;

/// Short bounds: 1 s to connect, 2 s a request, one retry.
const SHORT: Timeouts = Timeouts {
    connect: Duration::from_secs(1),
    request: Duration::from_secs(2),
    retries: 1,
    retry_window: Duration::from_secs(5),
};

/// The worst case those bounds allow, with room for a loaded machine.
const BOUND: Duration = Duration::from_secs(15);

/// A store with an index published through `direct`, and a client of it through a proxy.
fn published_through_proxy(
    s3: &quire_testkit::paths::S3,
    scratch: &Path,
) -> (Proxy, Arc<dyn ArtifactStore>, quire_core::IndexId) {
    let direct = crate::config(s3, None);
    let builder_store: Arc<dyn ArtifactStore> = Arc::new(crate::connect(s3, &direct));
    let builder = data_dir(&scratch.join("builder"), &builder_store);
    let id = build_small_index(&builder, &scratch.join("corpus")).index_id;
    let upstream = s3.endpoint.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(upstream);
    let proxied = S3Config {
        endpoint: Some(proxy.endpoint()),
        timeouts: SHORT,
        ..direct
    };
    (proxy, Arc::new(crate::connect(s3, &proxied)), id)
}

/// Open `id` in a fresh data dir at `dir` through `store`, expecting a store failure within
/// [`BOUND`] and nothing left behind; the error.
fn fails_in_time(store: &Arc<dyn ArtifactStore>, dir: &Path, id: &quire_core::IndexId) -> String {
    let replica = data_dir(dir, store);
    let started = Instant::now();
    let err = replica.open_index(id).expect_err("the store failed");
    let took = started.elapsed();
    assert!(
        took < BOUND,
        "failed after {took:?}, beyond {BOUND:?}: {err}"
    );
    assert!(matches!(err, StoreError::Artifact { .. }), "{err:?}");
    assert!(err.to_string().contains(store.location()), "{err}");
    for sub in ["indexes", "tmp"] {
        let left = std::fs::read_dir(dir.join(sub)).unwrap().count();
        assert_eq!(left, 0, "nothing partial in {sub}/ after: {err}");
    }
    eprintln!("failed after {took:?}: {err}");
    err.to_string()
}

#[test]
fn a_fetch_cut_mid_transfer_fails_within_the_timeout_and_converges_after() {
    let Some(s3) = quire_testkit::s3() else {
        return;
    };
    let tmp = tempfile::TempDir::new().unwrap();
    let (proxy, store, id) = published_through_proxy(&s3, tmp.path());
    // A whole fetch through the proxy measures it; the next stalls half-way, inside a file.
    data_dir(&tmp.path().join("measure"), &store)
        .open_index(&id)
        .unwrap();
    let whole = proxy.forwarded();
    proxy.stall_after(whole / 2);
    let replica = tmp.path().join("replica");
    fails_in_time(&store, &replica, &id);
    proxy.resume();
    let fetched = data_dir(&replica, &store)
        .open_index(&id)
        .expect("the store is back");
    assert_eq!(fetched.manifest().index_id, id);
}

#[test]
fn a_fetch_from_a_store_that_is_down_fails_within_the_timeout() {
    let Some(s3) = quire_testkit::s3() else {
        return;
    };
    let tmp = tempfile::TempDir::new().unwrap();
    let (mut proxy, store, id) = published_through_proxy(&s3, tmp.path());
    proxy.shut();
    fails_in_time(&store, &tmp.path().join("replica"), &id);
}
