//! GC across machines (with a shared artifact store): an index nothing holds is first marked
//! as deleting in the registry, and its objects are deleted only once the mark is at least
//! [`StoreOptions::gc_grace`](crate::StoreOptions) old (two replica poll intervals): by then
//! every replica has read the mark, and a replica fetches no marked index. Liveness and
//! freshness are checked again before deleting, and an index that came back to life (an alias
//! or pin in the meantime, new objects) is unmarked instead. An index another machine is still
//! uploading (nothing of it committed or recorded), or whose newest object in the store is
//! younger than `gc_fresh`, is not marked at all. Ages are judged by the store's clock
//! ([`ArtifactStore::now`] against the objects' last-modified times), never this machine's or
//! a builder's. An upload that never committed and whose newest object is older than
//! `gc_fresh` was abandoned: it is deleted (see `uploads`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod packs;
mod snapshots;
mod uploads;

use quire_core::IndexId;
use quire_release::AuditDraft;
use quire_release::retention::GcReport;
use serde_json::json;

use crate::artifacts::{ArtifactStore, Key, newest, transfer};
use crate::error::{Result, StoreError};
use crate::store::Store;

/// How long before `now` the time `at` was (zero for a time after `now`).
fn age(now: SystemTime, at: SystemTime) -> Duration {
    now.duration_since(at).unwrap_or_default()
}

/// `at` as RFC 3339.
fn time_of(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{at:?}"))
}

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
    /// The shared store's part of [`Store::gc`]: delete abandoned uploads, mark every index
    /// the store holds that is not live, wait out the grace, then delete what is still dead
    /// (objects, then the local copy, then the mark and the manifest record), the snapshots
    /// and embedding packs nothing left uses. Dry: see [`Store::gc_shared_dry`].
    pub(crate) fn gc_shared(
        &self,
        store: &dyn ArtifactStore,
        dry_run: bool,
        actor: &str,
        reason: &str,
    ) -> Result<GcReport> {
        let now = store.now()?;
        if dry_run {
            let uploads = self.abandoned_uploads(store, now)?;
            return self.gc_shared_dry(store, now, &uploads);
        }
        let mut deleted_uploads = Vec::new();
        self.each_abandoned_upload(store, now, &mut |upload| {
            deleted_uploads.push(self.delete_upload(store, upload, actor, reason)?);
            Ok(())
        })?;
        let mut report = GcReport {
            deleted_uploads,
            ..GcReport::default()
        };
        let marked = self.mark_dead(store, now, None, &mut report, actor, reason)?;
        let marks = self.registry.deleting()?;
        self.wait_out_grace(&marks);
        let now = store.now()?;
        let _guard = self.release_lock();
        let live = self.liveness()?;
        let mut orphaned = BTreeSet::new();
        for id in marks.keys() {
            let why = match live.get(id) {
                Some(why) => Some(why.clone()),
                // Written to since this run marked it (a builder publishing it again); an
                // explicit `delete` marks regardless of freshness.
                None if marked.contains(id) => self.in_flight(store, id, now)?,
                None => None,
            };
            if let Some(why) = why {
                let draft = gc_draft("index.delete.cancelled", id, actor, reason);
                self.registry.unmark_deleting(id, false, draft)?;
                report.kept.insert(id.clone(), why);
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
        report.deleted_packs = self.gc_shared_packs(store, actor, reason)?;
        Ok(report)
    }

    /// [`Store::gc_shared`] dry, by reading only (besides [`ArtifactStore::now`]'s probe):
    /// the abandoned `uploads`, the indices a real run would mark (and delete after the grace
    /// unless they come back to life meanwhile), and the embedding packs no index left after
    /// that would use. Snapshots are left to the local part (which ones go here depends on
    /// what the store holds after the grace).
    fn gc_shared_dry(
        &self,
        store: &dyn ArtifactStore,
        now: SystemTime,
        uploads: &[uploads::Abandoned],
    ) -> Result<GcReport> {
        let mut report = GcReport {
            dry_run: true,
            deleted_uploads: uploads.iter().map(uploads::Abandoned::report).collect(),
            ..GcReport::default()
        };
        let mut gone = uploads::emptied_by(store, uploads)?;
        self.mark_dead(store, now, Some(&gone), &mut report, "", "")?;
        gone.extend(report.deleted_indexes.iter().cloned());
        report.deleted_packs = self.packs_to_delete(store, &gone, now)?;
        Ok(report)
    }

    /// Under the release lock, mark each index in the store that is not live or in flight
    /// at `now` (see [`Store::in_flight`]) as deleting, put the others in `report.kept`, and
    /// return the ones marked. Dry (`Some(skip)`: indices a real run would have removed already and
    /// are not looked at): nothing is marked, the ones to mark go to `report.deleted_indexes`.
    fn mark_dead(
        &self,
        store: &dyn ArtifactStore,
        now: SystemTime,
        dry: Option<&BTreeSet<IndexId>>,
        report: &mut GcReport,
        actor: &str,
        reason: &str,
    ) -> Result<BTreeSet<IndexId>> {
        let mut marked = BTreeSet::new();
        let _guard = self.release_lock();
        let live = self.liveness()?;
        for id in present_index_ids(store)? {
            if dry.is_some_and(|skip| skip.contains(&id)) {
                continue;
            }
            let why = match live.get(&id) {
                Some(why) => Some(why.clone()),
                None => self.in_flight(store, &id, now)?,
            };
            match why {
                Some(why) => {
                    report.kept.insert(id, why);
                }
                None if dry.is_some() => report.deleted_indexes.push(id),
                None => {
                    let draft = gc_draft("index.delete.marked", &id, actor, reason);
                    self.registry.mark_deleting(&id, now_us(), draft)?;
                    marked.insert(id);
                }
            }
        }
        Ok(marked)
    }

    /// The manifests of every build of an index in the store but those in `gone` (its
    /// registry record and its committed builds), by index; `None` while some index in the
    /// store has none (an upload in progress, whose snapshot and model are unknown).
    fn builds_in_store(
        &self,
        store: &dyn ArtifactStore,
        gone: &BTreeSet<IndexId>,
    ) -> Result<Option<BTreeMap<IndexId, Vec<quire_core::Manifest>>>> {
        let mut all = BTreeMap::new();
        for id in present_index_ids(store)? {
            if gone.contains(&id) {
                continue;
            }
            let mut builds: Vec<_> = self.registry.manifest(&id)?.into_iter().collect();
            for digest in transfer::index_builds(store, &id)? {
                builds.extend(transfer::committed_manifest(store, &id, &digest)?);
            }
            if builds.is_empty() {
                return Ok(None);
            }
            all.insert(id, builds);
        }
        Ok(Some(all))
    }

    /// Why index `id` in the shared store must stay although nothing holds it, if it must: it
    /// is still arriving (no build of it committed and none recorded: another machine is
    /// uploading it), or an object of it was written less than
    /// [`StoreOptions::gc_fresh`](crate::StoreOptions) before `now`, both by the store's clock
    /// (not aliased or pinned yet).
    fn in_flight(
        &self,
        store: &dyn ArtifactStore,
        id: &IndexId,
        now: SystemTime,
    ) -> Result<Option<Vec<String>>> {
        let recorded = self.registry.manifest(id)?.is_some();
        if !recorded && transfer::index_builds(store, id)?.is_empty() {
            return Ok(Some(vec![
                "no build committed or recorded yet: an upload in progress".into(),
            ]));
        }
        let fresh = self.options.gc_fresh;
        let written = newest(&store.list_objects(&Key::index(id))?);
        Ok(written.filter(|&at| age(now, at) < fresh).map(|at| {
            vec![format!(
                "written to the store at {}, less than {} s ago by the store's clock \
                     (alias or pin it)",
                time_of(at),
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
