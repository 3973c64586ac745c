//! Sampled requests in the registry: the server's sampler writes them, `quire samples` and
//! canary evaluation read them, and retention deletes them.

use quire_release::{SampleQuery, SampleRecord};

use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Store sampled requests (the server's sample writer).
    pub fn record_samples(&self, samples: &[SampleRecord]) -> Result<()> {
        self.require_write()?;
        self.registry.put_samples(samples)
    }

    /// The samples `query` selects, oldest first.
    pub fn samples(&self, query: &SampleQuery) -> Result<Vec<SampleRecord>> {
        self.registry.samples(query)
    }

    /// Delete samples recorded before `before_us` (microseconds since the epoch).
    pub fn prune_samples(&self, before_us: u64) -> Result<u64> {
        self.require_write()?;
        self.registry.prune_samples(before_us)
    }
}
