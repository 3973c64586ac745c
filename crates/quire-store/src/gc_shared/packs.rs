//! The shared embedding cache's packs (`embed-cache/<namespace>/<hash>.pack`): a namespace is
//! one model at one precision, and its packs are kept while some index in the store was built
//! with that model at that precision (a rebuild of it, or a new build with it, reuses them).
//! Once none is, its packs go when they are at least `gc_fresh` old by the store's clock (a
//! builder shares its pack just before it uploads its index).

use std::collections::BTreeSet;

use quire_release::AuditDraft;
use serde_json::json;

use super::age;
use crate::artifacts::{ArtifactStore, Key};
use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Delete the packs of every namespace no index in the store uses (none while some index
    /// in the store has no known build: an upload in progress, whose model is unknown); one
    /// `embed_cache.delete` event per namespace. The packs deleted.
    pub(super) fn gc_shared_packs(
        &self,
        store: &dyn ArtifactStore,
        actor: &str,
        reason: &str,
    ) -> Result<usize> {
        let root = Key::new(crate::store::PACKS).map_err(|e| crate::StoreError::Invalid {
            field: "embedding cache",
            reason: e,
        })?;
        let namespaces = store.children(&root)?;
        if namespaces.is_empty() {
            return Ok(0);
        }
        let Some(builds) = self.builds_in_store(store)? else {
            return Ok(0);
        };
        let used: BTreeSet<String> = builds
            .values()
            .flatten()
            .map(|m| quire_embed::cache_namespace(&m.embedding.digest, m.spec.embedding.precision))
            .collect();
        let now = store.now()?;
        let mut deleted = 0;
        for namespace in namespaces.iter().filter(|n| !used.contains(*n)) {
            let Ok(prefix) = root.join(namespace) else {
                continue;
            };
            let old: Vec<_> = store
                .list_objects(&prefix)?
                .into_iter()
                .filter(|o| age(now, o.modified) >= self.options.gc_fresh)
                .collect();
            if old.is_empty() {
                continue;
            }
            for object in &old {
                store.delete(&object.key)?;
            }
            deleted += old.len();
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
        }
        Ok(deleted)
    }
}
