//! Retrieval metrics with trec_eval semantics: graded gain equal to the relevance, a log2
//! discount, the ideal ranking taken from the judgments, unjudged documents counting as 0.
//!
//! A run is each query's ranked list of document ids, best first. Repeated ids (several chunks
//! of one document) count once, at their first rank. Means are over the judged queries; a judged
//! query missing from the run scores 0.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::dataset::Qrels;

/// Per-query or mean metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// nDCG at 10.
    pub ndcg_at_10: f64,
    /// Recall at 10.
    pub recall_at_10: f64,
    /// Recall at 100.
    pub recall_at_100: f64,
    /// Reciprocal rank of the first relevant document within the top 10.
    pub mrr_at_10: f64,
}

fn dedup(ranked: &[String]) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    ranked
        .iter()
        .map(String::as_str)
        .filter(|d| seen.insert(*d))
        .collect()
}

fn dcg(gains: impl Iterator<Item = i32>) -> f64 {
    gains
        .enumerate()
        .map(|(i, g)| f64::from(g.max(0)) / ((i + 2) as f64).log2())
        .sum()
}

/// Metrics of one query's ranking against its judgments.
pub fn score_query(ranked: &[String], judged: &BTreeMap<String, i32>) -> Metrics {
    let ranked = dedup(ranked);
    let relevant = judged.values().filter(|&&r| r > 0).count();
    let gain = |d: &str| judged.get(d).copied().unwrap_or(0);
    let mut ideal: Vec<i32> = judged.values().copied().filter(|&r| r > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg = dcg(ideal.into_iter().take(10));
    let ndcg = if idcg > 0.0 {
        dcg(ranked.iter().take(10).map(|d| gain(d))) / idcg
    } else {
        0.0
    };
    let recall = |k: usize| {
        if relevant == 0 {
            0.0
        } else {
            ranked.iter().take(k).filter(|d| gain(d) > 0).count() as f64 / relevant as f64
        }
    };
    let mrr = ranked
        .iter()
        .take(10)
        .position(|d| gain(d) > 0)
        .map_or(0.0, |i| 1.0 / (i + 1) as f64);
    Metrics {
        ndcg_at_10: ndcg,
        recall_at_10: recall(10),
        recall_at_100: recall(100),
        mrr_at_10: mrr,
    }
}

/// Per-query metrics for every judged query, and their means.
pub fn evaluate(
    run: &BTreeMap<String, Vec<String>>,
    qrels: &Qrels,
) -> (BTreeMap<String, Metrics>, Metrics) {
    let empty = Vec::new();
    let per_query: BTreeMap<String, Metrics> = qrels
        .iter()
        .map(|(q, judged)| (q.clone(), score_query(run.get(q).unwrap_or(&empty), judged)))
        .collect();
    let n = per_query.len().max(1) as f64;
    let sum = per_query.values().fold(Metrics::default(), |a, m| Metrics {
        ndcg_at_10: a.ndcg_at_10 + m.ndcg_at_10,
        recall_at_10: a.recall_at_10 + m.recall_at_10,
        recall_at_100: a.recall_at_100 + m.recall_at_100,
        mrr_at_10: a.mrr_at_10 + m.mrr_at_10,
    });
    let mean = Metrics {
        ndcg_at_10: sum.ndcg_at_10 / n,
        recall_at_10: sum.recall_at_10 / n,
        recall_at_100: sum.recall_at_100 / n,
        mrr_at_10: sum.mrr_at_10 / n,
    };
    (per_query, mean)
}

/// Persistence of rank-biased overlap: weight of rank `d` is proportional to `p^(d-1)`.
const RBO_P: f64 = 0.9;

/// Jaccard overlap of two id lists, as sets (1 when both are empty).
pub fn jaccard(a: &[String], b: &[String]) -> f64 {
    let a: BTreeSet<&String> = a.iter().collect();
    let b: BTreeSet<&String> = b.iter().collect();
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
    let (mut seen_a, mut seen_b) = (BTreeSet::new(), BTreeSet::new());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn judged(v: &[(&str, i32)]) -> BTreeMap<String, i32> {
        v.iter().map(|(d, r)| ((*d).to_owned(), *r)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_binary_case() {
        // Relevant d1 and d3; ranking d2, d1, d4, d3.
        let m = score_query(
            &ids(&["d2", "d1", "d4", "d3"]),
            &judged(&[("d1", 1), ("d3", 1)]),
        );
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!(close(m.ndcg_at_10, dcg / idcg), "{m:?}");
        assert!(close(m.recall_at_10, 1.0) && close(m.mrr_at_10, 0.5));
    }

    #[test]
    fn graded_gain_and_ideal_from_qrels() {
        // Gains 2 and 1; the ranking finds only the grade-1 document, first.
        let m = score_query(&ids(&["b", "x"]), &judged(&[("a", 2), ("b", 1), ("n", 0)]));
        let idcg = 2.0 + 1.0 / 3f64.log2();
        assert!(close(m.ndcg_at_10, 1.0 / idcg), "{m:?}");
        assert!(close(m.recall_at_10, 0.5) && close(m.mrr_at_10, 1.0));
    }

    #[test]
    fn graded_misordered_with_unjudged_between() {
        // Judged: a=3, b=1, c=0. Ranking: b, u (unjudged), a, c.
        let m = score_query(
            &ids(&["b", "u", "a", "c"]),
            &judged(&[("a", 3), ("b", 1), ("c", 0)]),
        );
        let dcg = 1.0 + 3.0 / 2.0; // log2(2) = 1, log2(4) = 2
        let idcg = 3.0 + 1.0 / 3f64.log2();
        assert!(close(m.ndcg_at_10, dcg / idcg), "{m:?}");
        assert!(close(m.recall_at_10, 1.0) && close(m.mrr_at_10, 1.0));
        // Only zero judgments: nothing to find, every metric 0.
        let m = score_query(&ids(&["c"]), &judged(&[("c", 0)]));
        assert_eq!(m, Metrics::default());
    }

    #[test]
    fn ideal_is_cut_at_ten() {
        // Twelve relevant documents; the ranking holds the first ten: a perfect nDCG@10 but
        // recall@10 of 10 / 12.
        let all: Vec<String> = (0..12).map(|i| format!("r{i}")).collect();
        let qrels: Vec<(&str, i32)> = all.iter().map(|d| (d.as_str(), 1)).collect();
        let m = score_query(&all[..10], &judged(&qrels));
        assert!(close(m.ndcg_at_10, 1.0), "{m:?}");
        assert!(close(m.recall_at_10, 10.0 / 12.0) && close(m.recall_at_100, 10.0 / 12.0));
    }

    #[test]
    fn cutoffs_duplicates_and_missing_queries() {
        let mut ranked: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
        ranked.push("r".into());
        let m = score_query(&ranked, &judged(&[("r", 1)]));
        assert!(
            close(m.ndcg_at_10, 0.0)
                && close(m.recall_at_10, 0.0)
                && close(m.recall_at_100, 1.0)
                && close(m.mrr_at_10, 0.0)
        );
        // The same document twice counts once, at its first rank.
        let m = score_query(&ids(&["x", "x", "r"]), &judged(&[("r", 1)]));
        assert!(close(m.mrr_at_10, 0.5), "{m:?}");
        let qrels: Qrels = [
            ("q1".to_owned(), judged(&[("r", 1)])),
            ("q2".to_owned(), judged(&[("s", 1)])),
        ]
        .into();
        let run = [("q1".to_owned(), ids(&["r"]))].into();
        let (per, mean) = evaluate(&run, &qrels);
        assert!(close(per["q2"].ndcg_at_10, 0.0) && close(mean.ndcg_at_10, 0.5));
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn overlap_measures_hand_checked() {
        assert_eq!(jaccard(&words("a b c"), &words("c b a")), 1.0);
        assert_eq!(jaccard(&words("a b"), &words("b c")), 1.0 / 3.0);
        assert!((rbo(&words("a b c"), &words("a b c")) - 1.0).abs() < 1e-12);
        assert_eq!(rbo(&words("a b"), &words("c d")), 0.0);
        // Same set, different order: below 1, above a half-overlapping ranking.
        let swapped = rbo(&words("a b c"), &words("c b a"));
        let half = rbo(&words("a b c d"), &words("a b e f"));
        assert!(swapped < 1.0 && swapped > 0.5, "{swapped}");
        // Agreement at the top weighs more than agreement at the bottom.
        let top = rbo(&words("a b c d"), &words("a x y z"));
        let bottom = rbo(&words("a b c d"), &words("x y z d"));
        assert!(top > bottom, "{top} vs {bottom}");
        assert!(half > top);
        // k = 2, lists a b / b a: A1 = 0, A2 = 1:
        // 1 * p^2 + (1-p)/p * (0 * p + 1 * p^2) = 0.81 + 0.1/0.9 * 0.81 = 0.9.
        assert!((rbo(&words("a b"), &words("b a")) - 0.9).abs() < 1e-12);
    }
}
