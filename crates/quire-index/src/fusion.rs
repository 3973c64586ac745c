//! Combining ranked lists from BM25 and vectors.

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// A ranked candidate list: (chunk ordinal, score), best first.
pub type Ranked = [(u32, f32)];

/// A fused candidate: its ordinal, fused score and per-retriever (rank, score).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fused {
    /// Chunk ordinal.
    pub ordinal: u32,
    /// Fused score.
    pub score: f64,
    /// BM25 (1-based rank, score).
    pub bm25: Option<(u32, f32)>,
    /// Vector (1-based rank, score).
    pub vector: Option<(u32, f32)>,
}

fn collect(bm25: &Ranked, vector: &Ranked) -> BTreeMap<u32, Fused> {
    let mut all: BTreeMap<u32, Fused> = BTreeMap::new();
    let blank = |ordinal| Fused {
        ordinal,
        score: 0.0,
        bm25: None,
        vector: None,
    };
    for (rank, &(ordinal, score)) in bm25.iter().enumerate() {
        all.entry(ordinal).or_insert_with(|| blank(ordinal)).bm25 = Some((rank as u32 + 1, score));
    }
    for (rank, &(ordinal, score)) in vector.iter().enumerate() {
        all.entry(ordinal).or_insert_with(|| blank(ordinal)).vector =
            Some((rank as u32 + 1, score));
    }
    all
}

/// Which retriever a single list came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// BM25.
    Bm25,
    /// Vectors.
    Vector,
}

/// Order fused candidates best first: by fused score, ties by `tie_key` of the chunk ordinal
/// (retrieval breaks ties by chunk id, so equal scores always come out in the same order).
pub fn sort_best_first<K: Ord>(fused: &mut [Fused], tie_key: impl Fn(u32) -> K) {
    fused.sort_by(best_first(tie_key));
}

/// Keep the best `k` of `fused`, best first: [`sort_best_first`] then a cut at `k`, but only
/// the `k` kept are sorted (RRF scores tie often, and each tie compares chunk ids).
pub fn keep_best<K: Ord>(fused: &mut Vec<Fused>, k: usize, tie_key: impl Fn(u32) -> K) {
    let mut order = best_first(tie_key);
    if k == 0 {
        fused.clear();
        return;
    }
    if k < fused.len() {
        // The order is total (ordinals are distinct), so the best `k` are one set.
        fused.select_nth_unstable_by(k - 1, &mut order);
        fused.truncate(k);
    }
    fused.sort_by(order);
}

fn best_first<K: Ord>(tie_key: impl Fn(u32) -> K) -> impl FnMut(&Fused, &Fused) -> Ordering {
    move |a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| tie_key(a.ordinal).cmp(&tie_key(b.ordinal)))
    }
}

/// One retriever alone: the fused score is its own score.
pub fn single(list: &Ranked, source: Source) -> Vec<Fused> {
    list.iter()
        .enumerate()
        .map(|(rank, &(ordinal, score))| {
            let own = Some((rank as u32 + 1, score));
            let (bm25, vector) = match source {
                Source::Bm25 => (own, None),
                Source::Vector => (None, own),
            };
            Fused {
                ordinal,
                score: f64::from(score),
                bm25,
                vector,
            }
        })
        .collect()
}

/// Reciprocal rank fusion: `sum 1 / (k + rank)` over the lists a chunk appears in.
pub fn rrf(bm25: &Ranked, vector: &Ranked, k: u32) -> Vec<Fused> {
    let mut all = collect(bm25, vector);
    for f in all.values_mut() {
        let term = |r: Option<(u32, f32)>| r.map_or(0.0, |(rank, _)| 1.0 / f64::from(k + rank));
        f.score = term(f.bm25) + term(f.vector);
    }
    all.into_values().collect()
}

/// Weighted fusion: `alpha * bm25 + (1 - alpha) * vector`, each min-max normalised over its own
/// candidates (a list whose scores are all equal normalises to 1); absent counts as 0.
pub fn weighted(bm25: &Ranked, vector: &Ranked, alpha: f64) -> Vec<Fused> {
    let normaliser = |list: &Ranked| {
        let (lo, hi) = list
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &(_, s)| {
                (lo.min(s), hi.max(s))
            });
        move |s: f32| {
            if hi > lo {
                f64::from((s - lo) / (hi - lo))
            } else {
                1.0
            }
        }
    };
    let (nb, nv) = (normaliser(bm25), normaliser(vector));
    let mut all = collect(bm25, vector);
    for f in all.values_mut() {
        f.score = alpha * f.bm25.map_or(0.0, |(_, s)| nb(s))
            + (1.0 - alpha) * f.vector.map_or(0.0, |(_, s)| nv(s));
    }
    all.into_values().collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Keeping the best `k` is sorting everything and cutting at `k`, ties included.
        #[test]
        fn keep_best_is_a_full_sort_cut_at_k(
            scores in prop::collection::vec(0u8..6, 0..60),
            k in 0usize..70,
        ) {
            let fused: Vec<Fused> = scores
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    let ordinal = (i as u32 * 7919) % 61;
                    (ordinal, Fused { ordinal, score: f64::from(s), bm25: None, vector: None })
                })
                .collect::<BTreeMap<u32, Fused>>()
                .into_values()
                .collect();
            let key = |o: u32| format!("c{:03}", 60 - o);
            let mut want = fused.clone();
            sort_best_first(&mut want, key);
            want.truncate(k);
            let mut got = fused;
            keep_best(&mut got, k, key);
            let ids = |v: &[Fused]| v.iter().map(|f| f.ordinal).collect::<Vec<_>>();
            prop_assert_eq!(ids(&got), ids(&want));
        }
    }

    #[test]
    fn rrf_rewards_agreement() {
        let fused = rrf(&[(1, 9.0), (2, 5.0)], &[(2, 0.9), (3, 0.8)], 60);
        let score = |o| {
            fused
                .iter()
                .find(|f| f.ordinal == o)
                .map(|f| f.score)
                .unwrap_or(0.0)
        };
        assert!(score(2) > score(1) && score(1) > score(3));
        assert!((score(2) - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
        assert_eq!(
            fused.iter().find(|f| f.ordinal == 2).and_then(|f| f.bm25),
            Some((2, 5.0))
        );
    }

    #[test]
    fn weighted_normalises_each_list() {
        let fused = weighted(&[(1, 10.0), (2, 0.0)], &[(2, 0.5), (1, 0.1)], 0.5);
        let score = |o| {
            fused
                .iter()
                .find(|f| f.ordinal == o)
                .map(|f| f.score)
                .unwrap_or(-1.0)
        };
        assert!((score(1) - 0.5).abs() < 1e-9 && (score(2) - 0.5).abs() < 1e-9);
        let only_bm25 = weighted(&[(1, 3.0)], &[], 0.25);
        assert!((only_bm25[0].score - 0.25).abs() < 1e-9);
    }
}
