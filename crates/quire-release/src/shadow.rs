//! Shadow comparison reports: how a shadow index's answers compared with the primary's.
//! Collecting the statistics is the serving process's job (quire-server).

use quire_core::IndexId;
use serde::Serialize;

/// Summary of one distribution.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Distribution {
    /// Samples summarised.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// What `alias shadow-report` shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ShadowReport {
    /// The alias.
    pub alias: String,
    /// The shadow index compared, when the alias has had one since this server started.
    pub shadow_index: Option<IndexId>,
    /// RFC 3339 time the comparison of this shadow began.
    pub since: String,
    /// Shadow queries compared.
    pub compared: u64,
    /// Shadow queries dropped because the queue was full.
    pub dropped: u64,
    /// Shadow queries that failed.
    pub failed: u64,
    /// Jaccard overlap of the top-k document ids.
    pub jaccard: Distribution,
    /// Rank-biased overlap (p = 0.9) of the top-k document ids.
    pub rbo: Distribution,
    /// Shadow latency minus primary latency, in microseconds.
    pub latency_delta_us: Distribution,
}
