//! Shadow comparison: after the primary answers, the same query runs on the alias's shadow
//! index in the background, and the overlap of their top-k documents and the latency delta
//! are recorded per alias.
//!
//! The queue is bounded by a fixed number of slots: when every slot is busy the shadow query
//! is dropped and counted, so shadowing never delays or queues behind callers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use quire_core::IndexId;
use serde::Serialize;

/// Samples kept per distribution; later ones are counted but not kept.
const MAX_SAMPLES: usize = 100_000;
/// Persistence of rank-biased overlap: weight of rank `d` is proportional to `p^(d-1)`.
const RBO_P: f64 = 0.9;

/// Jaccard overlap of two id lists, as sets (1 when both are empty).
pub fn jaccard(a: &[String], b: &[String]) -> f64 {
    let a: std::collections::BTreeSet<&String> = a.iter().collect();
    let b: std::collections::BTreeSet<&String> = b.iter().collect();
    let union = a.union(&b).count();
    if union == 0 {
        return 1.0;
    }
    a.intersection(&b).count() as f64 / union as f64
}

/// Extrapolated rank-biased overlap (Webber et al. 2010, eq. 32) of two rankings cut at the
/// same depth `k`: 1 for identical rankings, 0 for disjoint ones, top ranks weigh most.
pub fn rbo(a: &[String], b: &[String]) -> f64 {
    let k = a.len().max(b.len());
    if k == 0 {
        return 1.0;
    }
    let (mut seen_a, mut seen_b) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    let mut overlap = 0usize;
    let mut sum = 0.0;
    for d in 1..=k {
        if let Some(x) = a.get(d - 1) {
            if seen_b.contains(x) {
                overlap += 1;
            }
            seen_a.insert(x);
        }
        if let Some(y) = b.get(d - 1) {
            // Count y once: if a's element at this depth is y, it was just counted above
            // only if it was already in b, which it was not.
            if seen_a.contains(y) && !seen_b.contains(y) {
                overlap += 1;
            }
            seen_b.insert(y);
        }
        sum += overlap as f64 / d as f64 * RBO_P.powi(d as i32);
    }
    let agreement_k = overlap as f64 / k as f64;
    agreement_k * RBO_P.powi(k as i32) + (1.0 - RBO_P) / RBO_P * sum
}

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
    fn overlap_measures_hand_checked() {
        assert_eq!(jaccard(&ids("a b c"), &ids("c b a")), 1.0);
        assert_eq!(jaccard(&ids("a b"), &ids("b c")), 1.0 / 3.0);
        assert!((rbo(&ids("a b c"), &ids("a b c")) - 1.0).abs() < 1e-12);
        assert_eq!(rbo(&ids("a b"), &ids("c d")), 0.0);
        // Same set, different order: below 1, above a half-overlapping ranking.
        let swapped = rbo(&ids("a b c"), &ids("c b a"));
        let half = rbo(&ids("a b c d"), &ids("a b e f"));
        assert!(swapped < 1.0 && swapped > 0.5, "{swapped}");
        // Agreement at the top weighs more than agreement at the bottom.
        let top = rbo(&ids("a b c d"), &ids("a x y z"));
        let bottom = rbo(&ids("a b c d"), &ids("x y z d"));
        assert!(top > bottom, "{top} vs {bottom}");
        assert!(half > top);
        // k = 2, lists a b / b a: A1 = 0, A2 = 1:
        // 1 * p^2 + (1-p)/p * (0 * p + 1 * p^2) = 0.81 + 0.1/0.9 * 0.81 = 0.9.
        assert!((rbo(&ids("a b"), &ids("b a")) - 0.9).abs() < 1e-12);
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
