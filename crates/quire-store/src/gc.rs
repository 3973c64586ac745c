//! Pins and garbage collection. An index is live while an alias served or shadowed it in its
//! last N revisions, while an unexpired pin holds it, or while a query uses it; only indices
//! that are none of these may be deleted. Snapshots are deleted only when GC removed every
//! index built from them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use quire_core::{IndexId, SnapshotId};
use quire_release::AuditDraft;
pub use quire_release::retention::{DeletedPacks, DeletedUpload, GcReport, Pin};
use serde_json::json;

use crate::error::{IoContext, Result, StoreError};
use crate::store::Store;

/// Parse a pin's lifetime such as `30m`, `12h`, `7d` or `2w`.
pub fn parse_duration(text: &str) -> Result<Duration> {
    quire_core::spec::parse_duration_secs(text)
        .map(Duration::from_secs)
        .map_err(|reason| StoreError::Invalid {
            field: "expires",
            reason: format!("{text:?}: {reason}"),
        })
}

impl Store {
    /// Pin `index` for `holder`, replacing that holder's earlier pin on it.
    pub fn pin(
        &self,
        index: &IndexId,
        holder: &str,
        expires: Option<Duration>,
        actor: &str,
        reason: &str,
    ) -> Result<Pin> {
        self.manifest(index)?;
        if holder.trim().is_empty() {
            return Err(StoreError::Invalid {
                field: "holder",
                reason: "is empty".into(),
            });
        }
        let now = jiff::Timestamp::now();
        let expires = expires
            .map(|d| {
                jiff::SignedDuration::try_from(d)
                    .ok()
                    .and_then(|d| now.checked_add(d).ok())
                    .map(|t| t.to_string())
                    .ok_or_else(|| StoreError::Invalid {
                        field: "expires",
                        reason: "is too far in the future".into(),
                    })
            })
            .transpose()?;
        let pin = Pin {
            index_id: index.clone(),
            holder: holder.to_owned(),
            created: now.to_string(),
            expires,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
        };
        let _guard = self.release_lock();
        let draft = AuditDraft {
            actor: actor.to_owned(),
            action: "pin".into(),
            target: index.to_string(),
            after: json!({ "holder": holder, "expires": pin.expires }),
            reason: reason.to_owned(),
            ..AuditDraft::default()
        };
        self.registry.put_pin(&pin, draft)?;
        Ok(pin)
    }

    /// Remove `holder`'s pin on `index`.
    pub fn unpin(&self, index: &IndexId, holder: &str, actor: &str, reason: &str) -> Result<Pin> {
        let _guard = self.release_lock();
        let (pin, _) = self
            .registry
            .remove_pin(index, holder, &mut |pin| AuditDraft {
                actor: actor.to_owned(),
                action: "unpin".into(),
                target: index.to_string(),
                before: json!({ "holder": holder, "expires": pin.expires }),
                reason: reason.to_owned(),
                ..AuditDraft::default()
            })?;
        Ok(pin)
    }

    /// Every pin, expired ones included, by index and holder.
    pub fn pins(&self) -> Result<Vec<Pin>> {
        self.registry.pins()
    }

    /// Why each live index must stay: alias arms in the last `keep_revisions` revisions,
    /// live pins and queries in flight.
    pub(crate) fn liveness(&self) -> Result<BTreeMap<IndexId, Vec<String>>> {
        let mut live: BTreeMap<IndexId, Vec<String>> = BTreeMap::new();
        let keep = self.options.gc_keep_revisions.max(1);
        for (alias, history) in self.registry.alias_revisions()? {
            for r in history.iter().rev().take(keep) {
                for index in r.state.indexes() {
                    live.entry(index.clone())
                        .or_default()
                        .push(format!("alias {alias} revision {}", r.revision));
                }
            }
        }
        let now = jiff::Timestamp::now();
        for pin in self.pins()?.into_iter().filter(|p| p.is_live(now)) {
            live.entry(pin.index_id)
                .or_default()
                .push(format!("pinned by {}", pin.holder));
        }
        let cache = self.cache();
        for id in self.list_indexes()? {
            if cache.in_use(&id) {
                live.entry(id).or_default().push("in use by a query".into());
            }
        }
        Ok(live)
    }

    /// Delete one index; refused with the reasons when it is live. With a shared artifact
    /// store it goes from there too, across machines, as GC deletes (see `gc_shared`).
    pub fn delete_index(&self, index: &IndexId, actor: &str, reason: &str) -> Result<()> {
        self.require_write()?;
        self.manifest(index)?;
        if let Some(store) = self.artifacts() {
            return self.delete_shared(store, index, actor, reason);
        }
        let _guard = self.release_lock();
        if let Some(why) = self.liveness()?.remove(index) {
            return Err(StoreError::Live {
                id: index.to_string(),
                reasons: why.join(", "),
            });
        }
        self.remove_index_dir(index)?;
        self.audit(AuditDraft {
            actor: actor.to_owned(),
            action: "index.delete".into(),
            target: index.to_string(),
            reason: reason.to_owned(),
            ..AuditDraft::default()
        })?;
        Ok(())
    }

    /// Delete every index that is not live, and snapshots left without any index by that.
    /// With a shared artifact store, indices there go too, across machines: marked in the
    /// registry first, deleted after the grace (see `gc_shared`); then this data dir's own.
    pub fn gc(&self, dry_run: bool, actor: &str, reason: &str) -> Result<GcReport> {
        self.require_write()?;
        let Some(store) = self.artifacts() else {
            return self.gc_local(dry_run, actor, reason, &BTreeMap::new());
        };
        let mut shared = self.gc_shared(store, dry_run, actor, reason)?;
        // What the store keeps, this data dir keeps too (a fresh build, say).
        let local = self.gc_local(dry_run, actor, reason, &shared.kept)?;
        for id in local.deleted_indexes {
            if !shared.deleted_indexes.contains(&id) {
                shared.deleted_indexes.push(id);
            }
        }
        shared.deleted_indexes.sort();
        shared.deleted_snapshots.extend(local.deleted_snapshots);
        shared.deleted_snapshots.sort();
        shared.deleted_snapshots.dedup();
        shared.kept.extend(local.kept);
        Ok(shared)
    }

    /// GC of this data dir's indices and snapshots, keeping `kept` too.
    fn gc_local(
        &self,
        dry_run: bool,
        actor: &str,
        reason: &str,
        kept: &BTreeMap<IndexId, Vec<String>>,
    ) -> Result<GcReport> {
        let _guard = self.release_lock();
        let mut live = self.liveness()?;
        for (id, why) in kept {
            live.entry(id.clone()).or_insert_with(|| why.clone());
        }
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        let mut snapshot_of = BTreeMap::new();
        for id in self.list_indexes()? {
            snapshot_of.insert(id.clone(), self.manifest(&id)?.snapshot_id);
            match live.get(&id) {
                Some(why) => {
                    report.kept.insert(id, why.clone());
                }
                None => report.deleted_indexes.push(id),
            }
        }
        let kept_snapshots: BTreeSet<&SnapshotId> = report
            .kept
            .keys()
            .filter_map(|id| snapshot_of.get(id))
            .collect();
        let orphaned: BTreeSet<SnapshotId> = report
            .deleted_indexes
            .iter()
            .filter_map(|id| snapshot_of.get(id))
            .filter(|s| !kept_snapshots.contains(s))
            .cloned()
            .collect();
        report.deleted_snapshots = orphaned.into_iter().collect();
        if dry_run {
            return Ok(report);
        }
        let mut deleted = Vec::new();
        for id in std::mem::take(&mut report.deleted_indexes) {
            // A query may have opened it since liveness was computed.
            if self.cache().close(&id) {
                report.kept.insert(id, vec!["in use by a query".into()]);
                continue;
            }
            self.remove_index_dir(&id)?;
            deleted.push(id);
        }
        report.deleted_indexes = deleted;
        let still_needed: BTreeSet<&SnapshotId> = report
            .kept
            .keys()
            .filter_map(|id| snapshot_of.get(id))
            .collect();
        report
            .deleted_snapshots
            .retain(|s| !still_needed.contains(s));
        for snapshot in &report.deleted_snapshots {
            self.remove_snapshot_dir(snapshot)?;
        }
        self.audit(AuditDraft {
            actor: actor.to_owned(),
            action: "gc".into(),
            target: "indexes".into(),
            before: json!(null),
            after: json!({
                "deleted_indexes": report.deleted_indexes,
                "deleted_snapshots": report.deleted_snapshots,
            }),
            reason: reason.to_owned(),
            evidence: json!({ "kept": report.kept.len() }),
        })?;
        Ok(report)
    }

    /// Move a directory into scratch space (one rename, so readers never see half of it),
    /// then delete it.
    pub(crate) fn remove_dir(&self, dir: &Path, what: &str) -> Result<()> {
        let scratch = self.scratch(what)?;
        let doomed = scratch.join("doomed");
        std::fs::rename(dir, &doomed).at(dir)?;
        crate::store::make_writable(&doomed)?;
        std::fs::remove_dir_all(&scratch).at(&scratch)?;
        Ok(())
    }
}
