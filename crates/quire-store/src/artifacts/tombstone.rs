//! Deleting a snapshot from the shared store while builders on other machines may be
//! publishing an index built from it. Two parties each write, then read what the other wrote
//! (the store is strongly consistent, so at least one sees the other):
//!
//! - GC writes a tombstone `snapshots/<id>/deleting` ([`put`]), *then* lists the indices in the
//!   store, and deletes the snapshot only when none was built from it and none is being
//!   uploaded (its snapshot unknown); the commit marker first, the tombstone last. Otherwise
//!   it removes the tombstone.
//! - A builder uploads its index's files (an upload in progress, which GC's listing sees),
//!   *then* waits until the snapshot has no tombstone ([`await_clear`]), *then* uploads the
//!   snapshot again if its commit marker is gone, and only then commits the index.
//!
//! If GC deletes the snapshot, its listing did not see the builder's files, so the tombstone
//! was written before the builder looked for it: the builder waits until GC has deleted
//! everything (tombstone last) and then puts the snapshot back. A tombstone older than
//! [`STALE`] by the store's clock was left by a GC that stopped; the next GC clears it.

use std::time::{Duration, Instant, SystemTime};

use quire_core::SnapshotId;

use super::{ArtifactStore, Key};
use crate::error::{Result, StoreError};

/// The tombstone's name in a snapshot's "directory" (not a name a snapshot file has).
pub const TOMBSTONE_FILE: &str = "deleting";
/// How long a builder waits for a GC to finish deleting a snapshot before it gives up
/// (committing nothing).
pub const WAIT: Duration = Duration::from_secs(60);
/// A tombstone this old by the store's clock was left by a GC that stopped midway.
pub const STALE: Duration = Duration::from_secs(600);
/// How often a waiting builder looks again.
const POLL: Duration = Duration::from_millis(50);

/// The tombstone's key for snapshot `id`.
pub fn key(id: &SnapshotId) -> Key {
    Key(format!("{}/{TOMBSTONE_FILE}", Key::snapshot(id)))
}

/// Write snapshot `id`'s tombstone (GC, before it looks for indices built from it).
pub fn put(store: &dyn ArtifactStore, id: &SnapshotId) -> Result<()> {
    let body = format!("deleting by GC in process {}\n", std::process::id());
    store.put(&key(id), &mut body.as_bytes(), body.len() as u64)
}

/// Remove snapshot `id`'s tombstone (GC called the deletion off, or finished it).
pub fn remove(store: &dyn ArtifactStore, id: &SnapshotId) -> Result<()> {
    store.delete(&key(id))
}

/// Every snapshot in the store with a tombstone, and when it was written (store clock).
pub fn tombstoned(store: &dyn ArtifactStore) -> Result<Vec<(SnapshotId, SystemTime)>> {
    let mut found = Vec::new();
    for id in super::transfer::snapshot_ids(store)? {
        let tombstone = key(&id);
        if let Some(o) = store
            .list_objects(&Key::snapshot(&id))?
            .into_iter()
            .find(|o| o.key == tombstone)
        {
            found.push((id, o.modified));
        }
    }
    Ok(found)
}

/// Wait until no GC is deleting snapshot `id` (no tombstone), at most `wait`; refused naming
/// the tombstone if one is still there then.
pub fn await_clear(store: &dyn ArtifactStore, id: &SnapshotId, wait: Duration) -> Result<()> {
    let tombstone = key(id);
    let started = Instant::now();
    let mut waited = false;
    while store.get(&tombstone)?.is_some() {
        if started.elapsed() >= wait {
            return Err(StoreError::Artifact {
                store: store.location().to_owned(),
                key: tombstone.to_string(),
                reason: format!(
                    "GC is deleting snapshot {id} and has not finished within {} s; nothing \
                     committed, publish again (a tombstone a stopped GC left is cleared by a \
                     GC {} s later)",
                    wait.as_secs(),
                    STALE.as_secs()
                ),
            });
        }
        if !waited {
            tracing::info!(snapshot = %id, "GC is deleting the snapshot; waiting for it");
            waited = true;
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;
    use crate::DirStore;

    #[test]
    fn a_builder_gives_up_on_a_tombstone_that_stays_naming_it() {
        let tmp = tempfile::TempDir::new().expect("tmp");
        let store = DirStore::open(tmp.path()).expect("store");
        let id = SnapshotId::from_hash(blake3::hash(b"snapshot"));
        await_clear(&store, &id, Duration::ZERO).expect("no tombstone: no wait");
        put(&store, &id).expect("tombstone");
        let started = Instant::now();
        let err = await_clear(&store, &id, Duration::from_millis(120))
            .expect_err("refused")
            .to_string();
        assert!(started.elapsed() >= Duration::from_millis(120));
        assert!(
            err.contains(&key(&id).to_string()) && err.contains("nothing committed"),
            "{err}"
        );
        remove(&store, &id).expect("remove");
        await_clear(&store, &id, Duration::ZERO).expect("gone: no wait");
    }
}
