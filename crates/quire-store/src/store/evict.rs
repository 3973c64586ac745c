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
    /// removed. Opening waits meanwhile, so nothing is removed between being found and opened;
    /// while an index is being fetched or opened, nothing is evicted (the next round does it).
    pub fn evict_unused(&self) -> Result<Vec<IndexId>> {
        if !self.options.evict_unused || self.artifacts().is_none() {
            return Ok(Vec::new());
        }
        // A fetch in progress holds the lock shared: evict next time rather than make every
        // open of another index queue behind the fetch.
        let _no_open = match self.evicting.try_write() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(Vec::new()),
        };
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
