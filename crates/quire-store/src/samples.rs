//! Sampled requests and feedback in the registry: the server writes them, `quire samples`,
//! canary evaluation and `quire alias report` read them, and retention deletes them.

use quire_release::outcome::FeedbackRecord;
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

    /// Store feedback records (the server's writer).
    pub fn record_feedback(&self, records: &[FeedbackRecord]) -> Result<()> {
        self.require_write()?;
        self.registry.put_feedback(records)
    }

    /// `alias`'s feedback recorded at or after `since_us`, oldest first.
    pub fn feedback(&self, alias: &str, since_us: u64) -> Result<Vec<FeedbackRecord>> {
        self.registry.feedback(alias, since_us)
    }

    /// Delete feedback recorded before `before_us`.
    pub fn prune_feedback(&self, before_us: u64) -> Result<u64> {
        self.require_write()?;
        self.registry.prune_feedback(before_us)
    }
}
