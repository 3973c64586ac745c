//! The shared embedding cache's packs (`embed-cache/<namespace>/<hash>.pack`): a namespace is
//! one model at one precision, and its packs are kept while some index in the store was built
//! with that model at that precision (a rebuild of it, or a new build with it, reuses them).
//! Once none is, its packs go when they are at least `gc_fresh` old by the store's clock (a
//! builder shares its pack just before it uploads its index).

use std::collections::BTreeSet;
use std::time::SystemTime;

use quire_core::IndexId;
use quire_release::AuditDraft;
use quire_release::retention::DeletedPacks;
use serde_json::json;

use super::age;
use crate::artifacts::{ArtifactStore, Key, Listed};
use crate::error::Result;
use crate::store::Store;

impl Store {
    /// The packs of every namespace no index in the store but those in `gone` uses, by
    /// namespace (none while some index in the store has no known build: an upload in
    /// progress, whose model is unknown), whatever their age. Reads only.
    fn unused_packs(
        &self,
        store: &dyn ArtifactStore,
        gone: &BTreeSet<IndexId>,
    ) -> Result<Vec<(String, Vec<Listed>)>> {
        let root = Key::new(crate::store::PACKS).map_err(|e| crate::StoreError::Invalid {
            field: "embedding cache",
            reason: e,
        })?;
        let namespaces = store.children(&root)?;
        if namespaces.is_empty() {
            return Ok(Vec::new());
        }
        let Some(builds) = self.builds_in_store(store, gone)? else {
            return Ok(Vec::new());
        };
        let used: BTreeSet<String> = builds
            .values()
            .flatten()
            .map(|m| quire_embed::cache_namespace(&m.embedding.digest, m.spec.embedding.precision))
            .collect();
        let mut unused = Vec::new();
        for namespace in namespaces.into_iter().filter(|n| !used.contains(n)) {
            let Ok(prefix) = root.join(&namespace) else {
                continue;
            };
            unused.push((namespace, store.list_objects(&prefix)?));
        }
        Ok(unused)
    }

    /// Of `packs`, the ones at least `gc_fresh` old at `now`.
    fn old_packs(&self, packs: Vec<Listed>, now: SystemTime) -> Vec<Listed> {
        packs
            .into_iter()
            .filter(|o| age(now, o.modified) >= self.options.gc_fresh)
            .collect()
    }

    /// What [`Store::gc_shared_packs`] would delete at `now` once the indices in `gone` went.
    /// Reads only.
    pub(super) fn packs_to_delete(
        &self,
        store: &dyn ArtifactStore,
        gone: &BTreeSet<IndexId>,
        now: SystemTime,
    ) -> Result<Vec<DeletedPacks>> {
        let mut doomed = Vec::new();
        for (namespace, packs) in self.unused_packs(store, gone)? {
            let old = self.old_packs(packs, now);
            if !old.is_empty() {
                doomed.push(DeletedPacks {
                    namespace,
                    packs: old.len() as u64,
                });
            }
        }
        Ok(doomed)
    }

    /// Delete the packs of every namespace no index in the store uses (none while some index
    /// in the store has no known build: an upload in progress, whose model is unknown); one
    /// `embed_cache.delete` event per namespace. The packs deleted, by namespace.
    pub(super) fn gc_shared_packs(
        &self,
        store: &dyn ArtifactStore,
        actor: &str,
        reason: &str,
    ) -> Result<Vec<DeletedPacks>> {
        let unused = self.unused_packs(store, &BTreeSet::new())?;
        if unused.is_empty() {
            return Ok(Vec::new());
        }
        let now = store.now()?;
        let mut deleted = Vec::new();
        for (namespace, packs) in unused {
            let old = self.old_packs(packs, now);
            if old.is_empty() {
                continue;
            }
            for object in &old {
                store.delete(&object.key)?;
            }
            tracing::info!(
                namespace,
                packs = old.len(),
                "embedding cache packs deleted"
            );
            self.audit(AuditDraft {
                actor: actor.to_owned(),
                action: "embed_cache.delete".into(),
                target: namespace.clone(),
                reason: reason.to_owned(),
                evidence: json!({ "store": store.location(), "packs": old.len() }),
                ..AuditDraft::default()
            })?;
            deleted.push(DeletedPacks {
                namespace,
                packs: old.len() as u64,
            });
        }
        Ok(deleted)
    }
}
