//! Shadow comparison: after the primary answers, the same query runs on the alias's shadow
//! index in the background, and the overlap of their top-k documents and the latency delta
//! are recorded per alias, in this serving process's memory.
//!
//! The queue is bounded by a fixed number of slots: when every slot is busy the shadow query
//! is dropped and counted, so shadowing never delays or queues behind callers. The overlap
//! measures are quire-eval's ([`jaccard`], [`rbo`]); the report is quire-release's
//! [`ShadowReport`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use quire_core::IndexId;
use quire_eval::metrics::{jaccard, rbo};
use quire_release::{Distribution, ShadowReport};

/// Samples kept per distribution; later ones are counted but not kept.
const MAX_SAMPLES: usize = 100_000;

fn summarise(samples: &[f64]) -> Distribution {
    if samples.is_empty() {
        return Distribution::default();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    Distribution {
        count: sorted.len() as u64,
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        min: sorted[0],
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        max: sorted[sorted.len() - 1],
    }
}

#[derive(Default)]
struct AliasShadow {
    shadow: Option<IndexId>,
    since: String,
    compared: u64,
    dropped: u64,
    failed: u64,
    jaccard: Vec<f64>,
    rbo: Vec<f64>,
    latency_delta_us: Vec<f64>,
}

impl AliasShadow {
    /// Start over when the alias's shadow changed: numbers of different indices never mix.
    fn for_shadow(&mut self, shadow: &IndexId) -> &mut Self {
        if self.shadow.as_ref() != Some(shadow) {
            *self = Self {
                shadow: Some(shadow.clone()),
                since: jiff::Timestamp::now().to_string(),
                ..Self::default()
            };
        }
        self
    }
}

/// One comparison's outcome.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// Jaccard of top-k document ids.
    pub jaccard: f64,
    /// Rank-biased overlap of top-k document ids.
    pub rbo: f64,
    /// Shadow minus primary latency, microseconds.
    pub latency_delta_us: f64,
}

/// A held shadow slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ShadowSlot(Arc<AtomicUsize>);

impl Drop for ShadowSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The bounded set of shadow slots and the per-alias statistics.
pub struct Shadows {
    capacity: usize,
    busy: Arc<AtomicUsize>,
    stats: Mutex<BTreeMap<String, AliasShadow>>,
}

impl std::fmt::Debug for Shadows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shadows")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Shadows {
    /// Statistics with `capacity` shadow queries in flight at most.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            busy: Arc::default(),
            stats: Mutex::default(),
        }
    }

    /// A slot for one shadow query, or `None` (and a drop counted) when all are busy.
    pub fn try_slot(&self, alias: &str, shadow: &IndexId) -> Option<ShadowSlot> {
        let taken = self
            .busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            self.with(alias, shadow, |s| s.dropped += 1);
            return None;
        }
        Some(ShadowSlot(self.busy.clone()))
    }

    fn with(&self, alias: &str, shadow: &IndexId, f: impl FnOnce(&mut AliasShadow)) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(stats
            .entry(alias.to_owned())
            .or_default()
            .for_shadow(shadow));
    }

    /// Record a finished comparison.
    pub fn record(&self, alias: &str, shadow: &IndexId, c: Comparison) {
        self.with(alias, shadow, |s| {
            s.compared += 1;
            if s.jaccard.len() < MAX_SAMPLES {
                s.jaccard.push(c.jaccard);
                s.rbo.push(c.rbo);
                s.latency_delta_us.push(c.latency_delta_us);
            }
        });
    }

    /// Record a shadow query that failed.
    pub fn record_failure(&self, alias: &str, shadow: &IndexId) {
        self.with(alias, shadow, |s| s.failed += 1);
    }

    /// The report for `alias` since its current shadow began.
    pub fn report(&self, alias: &str) -> ShadowReport {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = stats.get(alias) else {
            return ShadowReport {
                alias: alias.to_owned(),
                ..ShadowReport::default()
            };
        };
        ShadowReport {
            alias: alias.to_owned(),
            shadow_index: s.shadow.clone(),
            since: s.since.clone(),
            compared: s.compared,
            dropped: s.dropped,
            failed: s.failed,
            jaccard: summarise(&s.jaccard),
            rbo: summarise(&s.rbo),
            latency_delta_us: summarise(&s.latency_delta_us),
        }
    }
}

/// Compare two answers' document rankings (duplicates after the first kept out).
pub fn compare(primary: &[String], shadow: &[String], latency_delta_us: f64) -> Comparison {
    let dedup = |ids: &[String]| {
        let mut seen = std::collections::BTreeSet::new();
        ids.iter()
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect::<Vec<_>>()
    };
    let (a, b) = (dedup(primary), dedup(shadow));
    Comparison {
        jaccard: jaccard(&a, &b),
        rbo: rbo(&a, &b),
        latency_delta_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn stats_restart_when_the_shadow_changes() {
        let shadows = Shadows::new(1);
        let one: IndexId = format!("idx-{}", "1".repeat(64)).parse().unwrap();
        let two: IndexId = format!("idx-{}", "2".repeat(64)).parse().unwrap();
        let c = compare(&ids("a b"), &ids("a c"), 50.0);
        shadows.record("prod", &one, c);
        shadows.record("prod", &one, c);
        assert_eq!(shadows.report("prod").compared, 2);
        let held = shadows.try_slot("prod", &one).unwrap();
        assert!(shadows.try_slot("prod", &one).is_none());
        assert_eq!(shadows.report("prod").dropped, 1);
        drop(held);
        shadows.record("prod", &two, c);
        let r = shadows.report("prod");
        assert_eq!((r.compared, r.dropped), (1, 0));
        assert_eq!(r.shadow_index, Some(two));
        assert_eq!(r.latency_delta_us.p50, 50.0);
    }
}
