//! BM25's top-k loop: the best allowed chunks among those tantivy offers, with scores that do
//! not depend on the order tantivy happened to visit postings in.
//!
//! tantivy's block-max WAND sums a chunk's per-term scores in the order its term cursors happen
//! to be in when it reaches the chunk, and that order depends on everything visited before:
//! other chunks, the pruning threshold, the depth. With three or more terms, float addition in
//! another order can differ in the last bit, so the same chunk's score could differ between
//! depths, or between an index and one holding only the chunks a reader may read (the
//! statistics being equal). So for a query of several terms the loop keeps every chunk within
//! a rounding margin of the `k`-th best ([`TopAllowed::new`]), and [`rescore`] sums each
//! candidate's per-term scores in term order before choosing the best `k`. A single term has
//! nothing to sum: its scores are tantivy's, and the margin is zero.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tantivy::query::Weight;
use tantivy::{DocId, DocSet, Score, SegmentReader};

use crate::ann::Allowed;
use crate::error::Result;

/// The best `k` (doc, score) pairs offered, among allowed docs: higher score first and, as in
/// tantivy's `TopDocs`, the lower doc id on equal scores (docs arrive in ascending order and a
/// doc must beat the threshold strictly to be offered). With a margin, docs offered within
/// the margin of the `k`-th best are kept aside as well.
pub(super) struct TopAllowed<'a> {
    k: usize,
    allowed: Option<&'a Allowed>,
    margin: Score,
    heap: BinaryHeap<Reverse<ScoredDoc>>,
    fringe: Vec<ScoredDoc>,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct ScoredDoc {
    pub(super) score: Score,
    pub(super) doc: DocId,
}

impl PartialEq for ScoredDoc {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for ScoredDoc {}

impl PartialOrd for ScoredDoc {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScoredDoc {
    /// Greater is better: a higher score, then a lower doc id.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.doc.cmp(&self.doc))
    }
}

/// The relative rounding margin for a sum of `terms` non-negative per-term scores. Summed in
/// two orders, the results differ by at most 2 (terms - 1) units of rounding of the sum; the
/// margin covers that twice over, plus the rounding of tantivy's block-max upper bounds.
pub(super) fn margin(terms: usize) -> Score {
    if terms < 2 {
        0.0
    } else {
        4.0 * terms as Score * Score::EPSILON
    }
}

impl<'a> TopAllowed<'a> {
    /// The best `k` among `allowed`, and (for `margin` > 0) the docs within `margin` (relative)
    /// of the `k`-th best.
    pub(super) fn new(k: usize, allowed: Option<&'a Allowed>, margin: Score) -> Self {
        Self {
            k,
            allowed,
            margin,
            heap: BinaryHeap::with_capacity(k + 1),
            fringe: Vec::new(),
        }
    }

    /// The lowest score that may still matter: the `k`-th best less the margin.
    fn floor(&self) -> Option<Score> {
        match self.heap.peek() {
            Some(Reverse(worst)) if self.heap.len() == self.k => {
                Some(worst.score - worst.score.abs() * self.margin)
            }
            _ => None,
        }
    }

    /// Offer a doc; returns the score a later doc must exceed to be offered.
    pub(super) fn offer(&mut self, doc: DocId, score: Score) -> Score {
        if self.allowed.is_none_or(|a| a.contains(doc)) {
            self.heap.push(Reverse(ScoredDoc { score, doc }));
            if self.heap.len() > self.k
                && let Some(Reverse(out)) = self.heap.pop()
                && self.margin > 0.0
            {
                self.fringe.push(out);
                if self.fringe.len() > 2 * self.k + 64
                    && let Some(floor) = self.floor()
                {
                    self.fringe.retain(|d| d.score > floor);
                }
            }
        }
        self.floor().unwrap_or(Score::MIN)
    }

    /// The docs kept: the best `k` and, with a margin, those within it of the `k`-th best; in
    /// no particular order.
    pub(super) fn into_candidates(self) -> Vec<ScoredDoc> {
        let floor = self.floor();
        let mut kept: Vec<ScoredDoc> = self.heap.into_iter().map(|Reverse(d)| d).collect();
        kept.extend(
            self.fringe
                .into_iter()
                .filter(|d| floor.is_none_or(|f| d.score > f)),
        );
        kept
    }
}

/// The best `k` of `candidates` by their per-term scores from `terms` (one weight per query
/// term, in a fixed order) summed in that order; the lower doc id on equal sums.
pub(super) fn rescore(
    mut candidates: Vec<ScoredDoc>,
    terms: &[Box<dyn Weight>],
    segment: &SegmentReader,
    k: usize,
) -> Result<Vec<ScoredDoc>> {
    candidates.sort_by_key(|d| d.doc);
    let mut sums: Vec<Score> = vec![0.0; candidates.len()];
    for term in terms {
        let mut scorer = term.scorer(segment, 1.0)?;
        for (candidate, sum) in candidates.iter().zip(&mut sums) {
            if scorer.doc() < candidate.doc {
                scorer.seek(candidate.doc);
            }
            if scorer.doc() == candidate.doc {
                *sum += scorer.score();
            }
        }
    }
    let mut scored: Vec<ScoredDoc> = candidates
        .iter()
        .zip(sums)
        .map(|(d, score)| ScoredDoc { score, doc: d.doc })
        .collect();
    scored.sort_by(|a, b| b.cmp(a));
    scored.truncate(k);
    Ok(scored)
}

/// Scores [`term_at_a_time`] checks at once for one above its threshold.
const SCAN_BLOCK: usize = 64;

/// The best `k` allowed chunks by their per-term scores from `terms` summed in that order,
/// computed term at a time: each term's postings are read once, in full, and added into
/// `scores` (one per chunk of the segment, zero on entry and again on a successful return).
/// The sums are those [`rescore`] forms, so the result is the same; what differs is the cost:
/// every posting is read (no block-max skipping), but once, with no heap of cursors.
pub(super) fn term_at_a_time(
    terms: &[Box<dyn Weight>],
    segment: &SegmentReader,
    allowed: Option<&Allowed>,
    k: usize,
    scores: &mut [Score],
) -> Result<Vec<ScoredDoc>> {
    for term in terms {
        term.for_each(segment, &mut |doc, score| {
            if let Some(sum) = scores.get_mut(doc as usize) {
                *sum += score;
            }
        })?;
    }
    let mut top = TopAllowed::new(k, allowed, 0.0);
    // A BM25 term score is positive, so zero means no query term occurs in the chunk.
    let mut threshold = 0.0;
    // Blocks with no score above the threshold (most, once the top fills) are only zeroed. Sums
    // are never negative, so their bit patterns order as the floats do, and an integer maximum
    // over a block vectorises.
    for (block_index, block) in scores.chunks_mut(SCAN_BLOCK).enumerate() {
        let best = block.iter().map(|s| s.to_bits()).max().unwrap_or(0);
        if Score::from_bits(best) > threshold {
            let first = (block_index * SCAN_BLOCK) as DocId;
            for (doc, &score) in (first..).zip(block.iter()) {
                if score > threshold {
                    threshold = top.offer(doc, score).max(0.0);
                }
            }
        }
        block.fill(0.0);
    }
    Ok(top.into_candidates())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_allowed_keeps_the_best_allowed_docs_and_the_lower_doc_on_ties() {
        let allowed = Allowed::from_fn(10, |i| i != 3);
        let mut top = TopAllowed::new(3, Some(&allowed), 0.0);
        let mut threshold = Score::MIN;
        for (doc, score) in [
            (0, 1.0),
            (1, 2.0),
            (2, 2.0),
            (3, 9.0),
            (4, 2.0),
            (5, 0.5),
            (6, 3.0),
        ] {
            // As tantivy's pruning loop does: only a score above the threshold is offered.
            if score > threshold {
                threshold = top.offer(doc, score);
            }
        }
        let mut hits: Vec<(u32, f32)> = top
            .into_candidates()
            .into_iter()
            .map(|d| (d.doc, d.score))
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(hits, [(6, 3.0), (1, 2.0), (2, 2.0)]);
        assert_eq!(threshold, 2.0);
    }

    #[test]
    fn with_a_margin_docs_within_it_of_the_kth_best_are_kept() {
        let close = 2.0 - 2.0 * f32::EPSILON;
        let mut top = TopAllowed::new(2, None, margin(3));
        let mut threshold = Score::MIN;
        for (doc, score) in [(0, 1.0), (1, 2.0), (2, close), (3, 3.0), (4, 1.5)] {
            if score > threshold {
                threshold = top.offer(doc, score);
            }
        }
        let mut kept: Vec<u32> = top.into_candidates().iter().map(|d| d.doc).collect();
        kept.sort();
        // Doc 2 is within rounding of doc 1, the 2nd best; docs 0 and 4 are not.
        assert_eq!(kept, [1, 2, 3]);
        assert!(threshold < 2.0 && threshold > 1.5, "{threshold}");
    }
}
