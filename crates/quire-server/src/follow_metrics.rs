//! Metrics of following a shared registry (replicas, and any server on PostgreSQL): rounds and
//! their outcome, when the registry was last read, how many revisions each alias lags behind
//! it, fetches of indices from the shared store (durations, failures) and evictions from disk.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use quire_store::{FollowReport, StoreError};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AliasLabels {
    alias: String,
}

fn result(ok: bool) -> ResultLabels {
    ResultLabels {
        result: if ok { "ok" } else { "error" }.into(),
    }
}

/// The follower's metrics, registered with the server's.
pub(crate) struct FollowMetrics {
    rounds: Family<ResultLabels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    lag: Family<AliasLabels, Gauge>,
    fetches: Family<ResultLabels, Counter>,
    fetch_seconds: Histogram,
    evicted: Counter,
}

impl FollowMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            rounds: Family::default(),
            last_success: Gauge::default(),
            lag: Family::default(),
            fetches: Family::default(),
            // 10 ms .. ~20 min.
            fetch_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 18)),
            evicted: Counter::default(),
        };
        registry.register(
            "quire_follow_rounds",
            "Rounds of following the registry, by result (error: the registry could not be read)",
            metrics.rounds.clone(),
        );
        registry.register(
            "quire_follow_last_success_timestamp_seconds",
            "When a follow round last read the registry (Unix time)",
            metrics.last_success.clone(),
        );
        registry.register(
            "quire_follow_revision_lag",
            "Revisions of an alias in the registry that this server does not serve yet (0: caught up)",
            metrics.lag.clone(),
        );
        registry.register(
            "quire_index_fetches",
            "Fetches of an index from the shared store, by result (error: failed or refused)",
            metrics.fetches.clone(),
        );
        registry.register(
            "quire_index_fetch_seconds",
            "Duration of successful fetches of an index from the shared store",
            metrics.fetch_seconds.clone(),
        );
        registry.register(
            "quire_indexes_evicted",
            "Indices removed from a replica's disk (no alias arm serves them, not open)",
            metrics.evicted.clone(),
        );
        metrics
    }

    /// Record one round: its report (or why the registry could not be read), and the revision
    /// this server serves of each alias (`served`).
    pub(crate) fn record_round(
        &self,
        report: &Result<FollowReport, StoreError>,
        served: &[(String, u64)],
    ) {
        self.rounds.get_or_create(&result(report.is_ok())).inc();
        let Ok(report) = report else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_success.set(now.as_secs_f64());
        // Every alias served is caught up unless it waits; one that waits and is not served
        // at all yet lags by its whole history.
        let mut lag: std::collections::BTreeMap<&str, u64> = served
            .iter()
            .map(|(alias, _)| (alias.as_str(), 0))
            .collect();
        for waiting in &report.waiting {
            let at = served
                .iter()
                .find(|(alias, _)| alias == &waiting.alias)
                .map_or(0, |(_, revision)| *revision);
            lag.insert(&waiting.alias, waiting.revision.saturating_sub(at));
        }
        for (alias, behind) in lag {
            let labels = AliasLabels {
                alias: alias.to_owned(),
            };
            self.lag
                .get_or_create(&labels)
                .set(i64::try_from(behind).unwrap_or(i64::MAX));
        }
        self.evicted.inc_by(report.evicted.len() as u64);
    }

    /// Record one fetch of an index: how long it took, or that it failed.
    pub(crate) fn record_fetch(&self, outcome: Result<Duration, &StoreError>) {
        self.fetches.get_or_create(&result(outcome.is_ok())).inc();
        if let Ok(took) = outcome {
            self.fetch_seconds.observe(took.as_secs_f64());
        }
    }
}
