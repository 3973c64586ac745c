//! GC across machines (with a shared artifact store): an index nothing holds is first marked
//! as deleting in the registry, and its objects are deleted only once the mark is at least
//! [`StoreOptions::gc_grace`](crate::StoreOptions) old (two replica poll intervals): by then
//! every replica has read the mark, and a replica fetches no marked index. Liveness is
//! checked again before deleting, and an index that came back to life (an alias or pin in the
//! meantime) is unmarked instead. An index another machine is still uploading (nothing of it
//! committed or recorded), or built less than `gc_fresh` ago, is not marked at all.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quire_core::{IndexId, SnapshotId};
use quire_release::AuditDraft;
use quire_release::retention::GcReport;
use serde_json::json;

use crate::artifacts::{ArtifactStore, Key, transfer};
use crate::error::{Result, StoreError};
use crate::store::Store;

/// Now, in microseconds since the epoch.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The index ids the store holds objects of (a store may keep listing an emptied "directory").
fn present_index_ids(store: &dyn ArtifactStore) -> Result<Vec<IndexId>> {
    let mut present = Vec::new();
    for id in transfer::index_ids(store)? {
        if !store.list(&Key::index(&id))?.is_empty() {
            present.push(id);
        }
    }
    Ok(present)
}

fn gc_draft(action: &str, index: &IndexId, actor: &str, reason: &str) -> AuditDraft {
    AuditDraft {
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: index.to_string(),
        reason: reason.to_owned(),
        ..AuditDraft::default()
    }
}

impl Store {
    /// The shared store's part of [`Store::gc`]: mark every index the store holds that is not
    /// live, wait out the grace, then delete what is still dead (objects, then the local
    /// copy, then the mark and the manifest record). Dry: what would be marked.
    pub(crate) fn gc_shared(
        &self,
        store: &dyn ArtifactStore,
        dry_run: bool,
        actor: &str,
        reason: &str,
    ) -> Result<GcReport> {
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        {
            let _guard = self.release_lock();
            let live = self.liveness()?;
            for id in present_index_ids(store)? {
                let why = match live.get(&id) {
                    Some(why) => Some(why.clone()),
                    None => self.in_flight(store, &id)?,
                };
                match why {
                    Some(why) => {
                        report.kept.insert(id, why);
                    }
                    None if dry_run => report.deleted_indexes.push(id),
                    None => {
                        let draft = gc_draft("index.delete.marked", &id, actor, reason);
                        self.registry.mark_deleting(&id, now_us(), draft)?;
                    }
                }
            }
        }
        if dry_run {
            return Ok(report);
        }
        let marks = self.registry.deleting()?;
        self.wait_out_grace(&marks);
        let _guard = self.release_lock();
        let live = self.liveness()?;
        let mut orphaned = BTreeSet::new();
        for id in marks.keys() {
            if let Some(why) = live.get(id) {
                let draft = gc_draft("index.delete.cancelled", id, actor, reason);
                self.registry.unmark_deleting(id, false, draft)?;
                report.kept.insert(id.clone(), why.clone());
            } else if self.cache().close(id) {
                report
                    .kept
                    .insert(id.clone(), vec!["in use by a query".into()]);
            } else {
                orphaned.extend(self.registry.manifest(id)?.map(|m| m.snapshot_id));
                self.delete_marked(store, id, actor, reason)?;
                report.kept.remove(id);
                report.deleted_indexes.push(id.clone());
            }
        }
        report.deleted_snapshots = self.gc_shared_snapshots(store, orphaned, actor, reason)?;
        Ok(report)
    }

    /// Delete from the shared store each of `orphaned` (snapshots of indices this GC deleted)
    /// that no index left in the store was built from; the ones deleted. A snapshot no index
    /// was ever built from (one just imported) is never a candidate, and while some index in
    /// the store has no known build (an upload in progress) nothing is deleted.
    fn gc_shared_snapshots(
        &self,
        store: &dyn ArtifactStore,
        mut orphaned: BTreeSet<SnapshotId>,
        actor: &str,
        reason: &str,
    ) -> Result<Vec<SnapshotId>> {
        for id in present_index_ids(store)? {
            let mut builds: Vec<_> = self.registry.manifest(&id)?.into_iter().collect();
            for digest in transfer::index_builds(store, &id)? {
                builds.extend(transfer::committed_manifest(store, &id, &digest)?);
            }
            if builds.is_empty() {
                return Ok(Vec::new());
            }
            for m in builds {
                orphaned.remove(&m.snapshot_id);
            }
        }
        for snapshot in &orphaned {
            transfer::remove_snapshot(store, snapshot)?;
            self.audit(AuditDraft {
                actor: actor.to_owned(),
                action: "snapshot.delete".into(),
                target: snapshot.to_string(),
                reason: reason.to_owned(),
                evidence: json!({ "store": store.location() }),
                ..AuditDraft::default()
            })?;
        }
        Ok(orphaned.into_iter().collect())
    }

    /// Why index `id` in the shared store must stay although nothing holds it, if it must: it
    /// is still arriving (no build of it committed and none recorded: another machine is
    /// uploading it), or its newest build, recorded or committed, was built less than
    /// [`StoreOptions::gc_fresh`](crate::StoreOptions) ago (not aliased or pinned yet).
    fn in_flight(&self, store: &dyn ArtifactStore, id: &IndexId) -> Result<Option<Vec<String>>> {
        let mut builds: Vec<_> = self.registry.manifest(id)?.into_iter().collect();
        if builds.is_empty() {
            for digest in transfer::index_builds(store, id)? {
                builds.extend(transfer::committed_manifest(store, id, &digest)?);
            }
        }
        if builds.is_empty() {
            return Ok(Some(vec![
                "no build committed or recorded yet: an upload in progress".into(),
            ]));
        }
        let fresh = self.options.gc_fresh;
        let now = jiff::Timestamp::now();
        let young = builds.iter().find_map(|m| {
            let built: jiff::Timestamp = m.build.built_at.parse().ok()?;
            let age = now.duration_since(built);
            (age < jiff::SignedDuration::try_from(fresh).ok()?).then(|| m.build.built_at.clone())
        });
        Ok(young.map(|at| {
            vec![format!(
                "built at {at}, less than {} s ago (alias or pin it)",
                fresh.as_secs()
            )]
        }))
    }

    /// [`Store::delete_index`] with a shared store: refused when live; else marked, and
    /// deleted everywhere once the mark is [`StoreOptions::gc_grace`](crate::StoreOptions)
    /// old and the index is still dead (otherwise unmarked and refused).
    pub(crate) fn delete_shared(
        &self,
        store: &dyn ArtifactStore,
        index: &IndexId,
        actor: &str,
        reason: &str,
    ) -> Result<()> {
        let live = |why: Vec<String>| StoreError::Live {
            id: index.to_string(),
            reasons: why.join(", "),
        };
        {
            let _guard = self.release_lock();
            if let Some(why) = self.liveness()?.remove(index) {
                return Err(live(why));
            }
            let draft = gc_draft("index.delete.marked", index, actor, reason);
            self.registry.mark_deleting(index, now_us(), draft)?;
        }
        let marks = self.registry.deleting()?;
        self.wait_out_grace(&marks.into_iter().filter(|(id, _)| id == index).collect());
        let _guard = self.release_lock();
        let why = match self.liveness()?.remove(index) {
            None if self.cache().close(index) => Some(vec!["in use by a query".into()]),
            why => why,
        };
        if let Some(why) = why {
            let draft = gc_draft("index.delete.cancelled", index, actor, reason);
            self.registry.unmark_deleting(index, false, draft)?;
            return Err(live(why));
        }
        self.delete_marked(store, index, actor, reason)
    }

    /// Delete marked index `id` everywhere: its objects (each build's commit marker first),
    /// its local copy, then its mark and manifest record with the `index.delete` event.
    fn delete_marked(
        &self,
        store: &dyn ArtifactStore,
        id: &IndexId,
        actor: &str,
        reason: &str,
    ) -> Result<()> {
        transfer::remove_index(store, id)?;
        if self.index_dir(id).exists() {
            self.remove_index_dir(id)?;
        }
        let draft = AuditDraft {
            evidence: json!({ "store": store.location() }),
            ..gc_draft("index.delete", id, actor, reason)
        };
        self.registry.unmark_deleting(id, true, draft)?;
        Ok(())
    }

    /// Sleep until the newest of `marks` is [`StoreOptions::gc_grace`](crate::StoreOptions)
    /// old (bounded by the grace itself: a mark from the future, a skewed clock, waits no
    /// longer).
    fn wait_out_grace(&self, marks: &BTreeMap<IndexId, u64>) {
        let grace = self.options.gc_grace;
        let Some(&newest) = marks.values().max() else {
            return;
        };
        let age = Duration::from_micros(now_us().saturating_sub(newest));
        let remaining = grace.saturating_sub(age).min(grace);
        if !remaining.is_zero() {
            tracing::info!(
                ms = remaining.as_millis() as u64,
                "waiting before deleting marked indices"
            );
            std::thread::sleep(remaining);
        }
    }
}
