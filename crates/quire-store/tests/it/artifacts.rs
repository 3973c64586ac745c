//! The artifact-store conformance suite on the directory store (`file:///...`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use quire_store::{ArtifactStore, DirStore};

#[test]
fn the_directory_store_passes_the_artifact_store_conformance_suite() {
    let tmp = tempfile::TempDir::new().unwrap();
    let stores = tmp.path().join("stores");
    let next = std::sync::atomic::AtomicU32::new(0);
    let fresh = || -> Arc<dyn ArtifactStore> {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Arc::new(DirStore::open(&stores.join(n.to_string())).unwrap())
    };
    quire_store::artifacts::conformance::run(&fresh, &tmp.path().join("data"));
}
