//! Snapshots in the shared store: deleted once no index in the store was built from them, by
//! the [`tombstone`] protocol, so a builder publishing an index built from one meanwhile puts
//! it back before committing.

use std::collections::BTreeSet;
use std::time::Instant;

use quire_core::SnapshotId;
use quire_release::AuditDraft;
use serde_json::json;

use super::age;
use crate::artifacts::{ArtifactStore, tombstone, transfer};
use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Delete from the shared store each of `orphaned` (snapshots of indices this GC deleted)
    /// that no index left in the store was built from; the ones deleted. A snapshot no index
    /// was ever built from (one just imported) is never a candidate, and while some index in
    /// the store has no known build (an upload in progress) nothing is deleted. Each candidate
    /// gets a tombstone *before* the store's indices are listed, and loses it last. Tombstones
    /// a stopped GC left ([`tombstone::STALE`] old by the store's clock) are cleared first.
    pub(super) fn gc_shared_snapshots(
        &self,
        store: &dyn ArtifactStore,
        orphaned: BTreeSet<SnapshotId>,
        actor: &str,
        reason: &str,
    ) -> Result<Vec<SnapshotId>> {
        self.clear_stale_tombstones(store, &orphaned)?;
        if orphaned.is_empty() {
            return Ok(Vec::new());
        }
        let marked = Instant::now();
        for id in &orphaned {
            tombstone::put(store, id)?;
        }
        let needed = match self.builds_in_store(store, &BTreeSet::new()) {
            Ok(builds) => builds.map(|all| {
                all.into_values()
                    .flatten()
                    .map(|m| m.snapshot_id)
                    .collect::<BTreeSet<_>>()
            }),
            Err(e) => {
                for id in &orphaned {
                    let _ = tombstone::remove(store, id);
                }
                return Err(e);
            }
        };
        let mut deleted = Vec::new();
        for id in orphaned {
            let keep = needed.as_ref().is_none_or(|needed| needed.contains(&id))
                // Paused for so long that another GC may have taken the tombstone for a
                // stopped one's and cleared it: a builder may have committed since.
                || marked.elapsed() >= tombstone::STALE / 2;
            if keep {
                tombstone::remove(store, &id)?;
                continue;
            }
            transfer::remove_snapshot(store, &id)?;
            self.audit(AuditDraft {
                actor: actor.to_owned(),
                action: "snapshot.delete".into(),
                target: id.to_string(),
                reason: reason.to_owned(),
                evidence: json!({ "store": store.location() }),
                ..AuditDraft::default()
            })?;
            deleted.push(id);
        }
        Ok(deleted)
    }

    /// Clear the tombstones a stopped GC left (older than [`tombstone::STALE`] by the store's
    /// clock; not this run's `candidates`): finish the deletion when it had begun (the commit
    /// marker gone: what is left is of no use), else call it off.
    fn clear_stale_tombstones(
        &self,
        store: &dyn ArtifactStore,
        candidates: &BTreeSet<SnapshotId>,
    ) -> Result<()> {
        let tombstones = tombstone::tombstoned(store)?;
        if tombstones.is_empty() {
            return Ok(());
        }
        let now = store.now()?;
        for (id, at) in tombstones {
            if candidates.contains(&id) || age(now, at) < tombstone::STALE {
                continue;
            }
            if transfer::snapshot_committed(store, &id)? {
                tracing::info!(snapshot = %id, "a stopped GC's tombstone cleared");
                tombstone::remove(store, &id)?;
            } else {
                tracing::info!(snapshot = %id, "a stopped GC's deletion finished");
                transfer::remove_snapshot(store, &id)?;
            }
        }
        Ok(())
    }
}
