//! GC across machines (with a shared artifact store): an index nothing holds is first marked
//! as deleting in the registry, and its objects are deleted only once the mark is at least
//! [`StoreOptions::gc_grace`](crate::StoreOptions) old (two replica poll intervals): by then
//! every replica has read the mark, and a replica fetches no marked index. Liveness is
//! checked again before deleting, and an index that came back to life (an alias or pin in the
//! meantime) is unmarked instead.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quire_core::IndexId;
use quire_release::AuditDraft;
use quire_release::retention::GcReport;
use serde_json::json;

use crate::artifacts::{ArtifactStore, transfer};
use crate::error::{Result, StoreError};
use crate::store::Store;

/// Now, in microseconds since the epoch.
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
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
            for id in transfer::index_ids(store)? {
                match live.get(&id) {
                    Some(why) => {
                        report.kept.insert(id, why.clone());
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
                self.delete_marked(store, id, actor, reason)?;
                report.kept.remove(id);
                report.deleted_indexes.push(id.clone());
            }
        }
        Ok(report)
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
