//! Following a shared registry (a replica, or any process on a PostgreSQL registry): read the
//! newest revision of every alias, make each of its arms local (fetched, checked against the
//! registry's record, opened) and only then switch the alias to it. Until then the revision
//! served before keeps serving.

use std::sync::Arc;

use quire_core::IndexId;
use quire_release::AliasRevision;

use super::Store;
use crate::error::{Result, StoreError};
use crate::registry::OnChange;

/// What one [`Store::follow_aliases`] round did.
#[derive(Debug, Default)]
pub struct FollowReport {
    /// Revisions this round switched to (their arms are local and open).
    pub switched: Vec<AliasRevision>,
    /// Newer revisions not switched to yet, with why (a fetch failed or was refused); the
    /// revision served before keeps serving.
    pub waiting: Vec<Waiting>,
    /// Indices removed from disk afterwards ([`Store::evict_unused`]).
    pub evicted: Vec<IndexId>,
}

/// A revision an alias cannot switch to yet.
#[derive(Debug)]
pub struct Waiting {
    /// The alias.
    pub alias: String,
    /// The registry's newest revision of it.
    pub revision: u64,
    /// Why its arms are not all local.
    pub error: StoreError,
}

impl Store {
    /// One round of following the registry: for the newest revision of every alias, make
    /// every arm local (one download per id: fetches are serialised, and a second trigger
    /// finds the index there), then switch the alias to it. A revision older than the one
    /// served is never switched to.
    pub fn follow_aliases(&self) -> Result<FollowReport> {
        let heads = self.registry.alias_heads()?;
        let serving = self.current_aliases();
        let mut report = FollowReport::default();
        for (alias, head) in heads {
            let served = serving.get(&alias).map(|r| r.revision);
            if served.is_some_and(|r| r > head.revision) {
                continue;
            }
            let ready = head.state.indexes().try_for_each(|id| self.make_ready(id));
            match ready {
                Ok(()) if served != Some(head.revision) => {
                    tracing::info!(%alias, revision = head.revision, "switched");
                    self.publish_alias(head.clone());
                    report.switched.push(head);
                }
                Ok(()) => {}
                Err(error) => {
                    tracing::warn!(%alias, revision = head.revision, "not switched yet: {error}");
                    report.waiting.push(Waiting {
                        alias,
                        revision: head.revision,
                        error,
                    });
                }
            }
        }
        report.evicted = self.evict_unused()?;
        Ok(report)
    }

    /// Serve `revision` of its alias from now on, unless a newer one is served already
    /// (revisions only grow: a rollback is a new revision too).
    pub(crate) fn publish_alias(&self, revision: AliasRevision) {
        let mut guard = self.aliases.write().unwrap_or_else(|e| e.into_inner());
        if guard
            .get(&revision.alias)
            .is_some_and(|r| r.revision > revision.revision)
        {
            return;
        }
        let mut next = (**guard).clone();
        next.insert(revision.alias.clone(), revision);
        *guard = Arc::new(next);
    }

    /// Fetch index `id` if this data dir lacks it, and open it, so the first query after a
    /// switch waits for neither.
    fn make_ready(&self, id: &IndexId) -> Result<()> {
        self.open_index(id).map(drop)
    }

    /// Whether every index an alias arm serves here is in the data dir: a replica reports
    /// NOT_SERVING until it is.
    pub fn arms_local(&self) -> bool {
        self.protected()
            .iter()
            .all(|id| self.index_dir(id).exists())
    }

    /// Ask the registry to call `on_change` when an alias changes (and after it reconnects);
    /// `false`: it cannot, and following is by polling alone.
    pub fn listen_registry(&self, on_change: OnChange) -> Result<bool> {
        self.registry.listen(on_change)
    }
}
