//! A replica's data dir is a cache of the shared store ([`StoreOptions::evict_unused`]): what
//! it holds on disk follows the open-index cache, whose budget and idle time close the least
//! recently used indices. An index is removed from disk once no alias arm serves it, it is not
//! open and no query holds it; an arm is never removed. Asked for again (`ALIAS@REV` of an
//! old revision, an id), it is fetched again.
//!
//! [`StoreOptions::evict_unused`]: crate::StoreOptions::evict_unused

use quire_core::IndexId;

use super::Store;
use crate::error::Result;

impl Store {
    /// Remove from disk every index no alias arm serves, not open and held by no query (with
    /// [`crate::StoreOptions::evict_unused`] and a shared store; otherwise nothing): the ids
    /// removed. Opening waits meanwhile, so nothing is removed between being found and opened.
    pub fn evict_unused(&self) -> Result<Vec<IndexId>> {
        if !self.options.evict_unused || self.artifacts().is_none() {
            return Ok(Vec::new());
        }
        let _no_open = self.evicting.write().unwrap_or_else(|e| e.into_inner());
        let protected = self.protected();
        let mut evicted = Vec::new();
        for id in self.list_indexes()? {
            let used = {
                let cache = self.cache();
                cache.open_ids().contains(&id) || cache.in_use(&id)
            };
            if protected.contains(&id) || used {
                continue;
            }
            self.remove_index_dir(&id)?;
            tracing::info!(index = %id, "evicted from disk: no alias arm serves it, not open");
            evicted.push(id);
        }
        Ok(evicted)
    }
}
