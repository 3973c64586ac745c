//! Open indices: opened lazily, shared through `Arc`, and closed when idle or when the memory
//! budget is exceeded, least recently used first. Indices an alias arm serves are never
//! closed by the cache; a closed index stays alive for queries still holding it.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use quire_core::IndexId;
use quire_index::OpenIndex;

/// How many open indices the cache may keep, and for how long without use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachePolicy {
    /// Total artifact bytes of open indices not protected by an alias before the least
    /// recently used are closed.
    pub budget_bytes: u64,
    /// Unprotected indices unused for this long are closed.
    pub idle: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            budget_bytes: 4 << 30,
            idle: Duration::from_secs(600),
        }
    }
}

struct Entry {
    index: Arc<OpenIndex>,
    bytes: u64,
    last_used: Instant,
}

/// The cache of open indices.
#[derive(Default)]
pub(crate) struct IndexCache {
    policy: CachePolicy,
    entries: HashMap<IndexId, Entry>,
    /// Every index handed out, so GC can tell whether a query still uses one.
    handed_out: HashMap<IndexId, Weak<OpenIndex>>,
}

impl IndexCache {
    pub(crate) fn new(policy: CachePolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// The open index `id`, marked as just used.
    pub(crate) fn get(&mut self, id: &IndexId) -> Option<Arc<OpenIndex>> {
        let entry = self.entries.get_mut(id)?;
        entry.last_used = Instant::now();
        Some(entry.index.clone())
    }

    /// Keep `index` open (or return the copy another thread opened first), then close what
    /// the policy says must go, never touching `protected` ones.
    pub(crate) fn insert(
        &mut self,
        id: &IndexId,
        index: Arc<OpenIndex>,
        bytes: u64,
        protected: &BTreeSet<IndexId>,
    ) -> Arc<OpenIndex> {
        let now = Instant::now();
        let index = self
            .entries
            .entry(id.clone())
            .or_insert(Entry {
                index,
                bytes,
                last_used: now,
            })
            .index
            .clone();
        self.handed_out.insert(id.clone(), Arc::downgrade(&index));
        self.sweep(now, protected, Some(id));
        index
    }

    /// Close idle indices, then least recently used ones while over budget. `keep` is the
    /// index being handed out right now.
    pub(crate) fn sweep(
        &mut self,
        now: Instant,
        protected: &BTreeSet<IndexId>,
        keep: Option<&IndexId>,
    ) {
        let closable = |id: &IndexId| !protected.contains(id) && Some(id) != keep;
        let idle = self.policy.idle;
        self.entries
            .retain(|id, e| !closable(id) || now.duration_since(e.last_used) < idle);
        let mut by_age: Vec<(Instant, IndexId)> = self
            .entries
            .iter()
            .filter(|(id, _)| closable(id))
            .map(|(id, e)| (e.last_used, id.clone()))
            .collect();
        by_age.sort();
        let mut open_bytes: u64 = self
            .entries
            .iter()
            .filter(|(id, _)| !protected.contains(*id))
            .map(|(_, e)| e.bytes)
            .sum();
        for (_, id) in by_age {
            if open_bytes <= self.policy.budget_bytes {
                break;
            }
            if let Some(e) = self.entries.remove(&id) {
                open_bytes -= e.bytes;
            }
        }
        self.handed_out.retain(|_, w| w.strong_count() > 0);
    }

    /// Close `id` (for deletion); true when a query still holds it.
    pub(crate) fn close(&mut self, id: &IndexId) -> bool {
        self.entries.remove(id);
        self.in_use(id)
    }

    /// Whether anything outside the cache still holds `id`.
    pub(crate) fn in_use(&self, id: &IndexId) -> bool {
        let cached = usize::from(self.entries.contains_key(id));
        self.handed_out
            .get(id)
            .is_some_and(|w| w.strong_count() > cached)
    }

    /// Ids of the indices open now.
    pub(crate) fn open_ids(&self) -> BTreeSet<IndexId> {
        self.entries.keys().cloned().collect()
    }
}
