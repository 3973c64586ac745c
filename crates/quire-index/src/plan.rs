//! How a query runs. BM25: term at a time or block-max WAND ([`Bm25Planner`]). Vectors: a walk of the frozen graph or an exact scan of the readable rows,
//! whichever the cost model says is cheaper for the index size and the reader's allowed count.
//!
//! Costs are counted in exact-scan rows (one streamed dot product). Measured with
//! `benches/plan_probe.rs` on SciFact MiniLM (6,590 x 384) and the synthetic 100k x 256 index: an
//! unfiltered walk costs about [`WALK_ROWS_PER_EF`] rows per unit of beam width (random rows,
//! heap work and visited marks), and a filtered walk about `1 / selectivity` times that, because
//! it must pass that many unreadable nodes for each readable one it keeps. A filtered walk also
//! loses recall, so its beam widens by `1.5 / selectivity` (at most
//! [`MAX_WIDEN`]): on 100k x 256 hash-v1 vectors (a harder set than real embeddings) with 30%
//! readable, ef 117 (`sqrt(1 / selectivity)`) reached recall@10 0.905, ef 234 0.942 and ef 351
//! 0.965, the last in about the exact scan's time; 1.5 / 0.3 = 5x the spec's ef 64 is 320. The
//! plan is a pure function of the index and the request, so the same query gets the same hits on
//! every run and every machine.
//!
//! Models whose vectors a graph serves poorly (`Embedder::graph_friendly` false: hash-v1) keep
//! an exact scan while the readable rows hold at most [`EXACT_SCAN_FLOATS`] (twice that when a
//! filter applies), the rule every index followed before the cost model.

use std::fmt;

/// For models a graph serves poorly: scan exactly up to this many floats of readable rows.
pub const EXACT_SCAN_FLOATS: usize = 4 << 20;
/// Exact-scan rows one unit of beam width costs an unfiltered walk.
pub const WALK_ROWS_PER_EF: f64 = 17.0;
/// A filtered walk's beam widens by `WIDEN_NUMERATOR / WIDEN_DENOMINATOR` (1.5) over the
/// readable share.
pub const WIDEN_NUMERATOR: usize = 3;
/// See [`WIDEN_NUMERATOR`].
pub const WIDEN_DENOMINATOR: usize = 2;
/// The most a filtered walk's beam widens.
pub const MAX_WIDEN: usize = 6;

/// How [`crate::OpenIndex::vector`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorPlan {
    /// Nothing is readable (or nothing was asked for).
    Empty,
    /// Scan every readable row.
    Exact {
        /// Rows scanned.
        rows: usize,
    },
    /// Walk the graph with this beam width.
    Walk {
        /// Beam width on layer 0.
        ef: usize,
    },
}

impl fmt::Display for VectorPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty"),
            Self::Exact { rows } => write!(f, "exact scan of {rows} rows"),
            Self::Walk { ef } => write!(f, "graph walk at ef {ef}"),
        }
    }
}

/// Which plans a [`Planner`] may pick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Planner {
    /// The cheaper plan by the cost model (the default).
    #[default]
    Cost,
    /// Always walk the graph (tests and benchmarks of the walk).
    Walk,
    /// Always scan exactly (ground truth).
    Exact,
}

impl Planner {
    /// The plan for `depth` hits among `allowed` readable chunks of `chunks`, with the spec's
    /// `ef_search`; `exact_below` readable rows or fewer always scan (0 for graph-friendly
    /// models).
    pub fn plan(
        self,
        chunks: usize,
        allowed: usize,
        ef_search: usize,
        depth: usize,
        exact_below: usize,
    ) -> VectorPlan {
        if allowed == 0 || depth == 0 || chunks == 0 {
            return VectorPlan::Empty;
        }
        let selectivity = allowed as f64 / chunks as f64;
        let base = ef_search.max(depth);
        // In integers, so a share like 30% widens by exactly 5.
        let ef = if allowed < chunks {
            let widened = (WIDEN_NUMERATOR as u128 * base as u128 * chunks as u128)
                .div_ceil(WIDEN_DENOMINATOR as u128 * allowed as u128);
            usize::try_from(widened)
                .unwrap_or(usize::MAX)
                .clamp(base, base.saturating_mul(MAX_WIDEN))
        } else {
            base
        };
        let walk_rows = WALK_ROWS_PER_EF * ef as f64 / selectivity;
        let walk = VectorPlan::Walk { ef };
        let exact = VectorPlan::Exact { rows: allowed };
        match self {
            Self::Walk => walk,
            Self::Exact => exact,
            Self::Cost if allowed <= exact_below => exact,
            Self::Cost if walk_rows < allowed as f64 => walk,
            Self::Cost => exact,
        }
    }
}

/// BM25 runs term at a time only up to this many chunks: its scratch is one score per chunk
/// for each query in flight (16 MiB here).
pub const TERM_AT_A_TIME_MAX_CHUNKS: usize = 4 << 20;
/// BM25 runs term at a time when the query's terms have at least `chunks /` this many
/// postings between them: below that, scanning one score per chunk costs more than the
/// postings block-max WAND would read.
pub const TERM_AT_A_TIME_MIN_SHARE: usize = 64;
/// BM25 runs term at a time for queries of at least this many distinct terms. On the synthetic
/// 100k index (`--bench bm25`, its queries cut to n words), p50 WAND / term at a time: 2 words
/// 36 / 51 us, 3 words 63 / 57, 4 words 91 / 63, 8 words 232 / 78, 64 words 5,720 / 326: with
/// one or two terms WAND's block bounds skip most postings.
pub const TERM_AT_A_TIME_MIN_TERMS: usize = 3;

/// How [`crate::OpenIndex::bm25_in`] finds its best chunks. Both give the same chunks with the
/// same scores, bit for bit: each chunk's per-term scores summed in the query's term order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bm25Plan {
    /// tantivy's block-max WAND over the terms' postings, skipping blocks that cannot reach the
    /// top; the candidates are then re-summed in term order.
    Pruned,
    /// Every posting of every term added into one score per chunk, term by term; then the
    /// best allowed chunks of that array. Measured on long queries (64 words over the synthetic
    /// 100k index: 0.33 ms against WAND's 5.7 ms) and SciFact's (28 us against 95 us, p50),
    /// where many terms keep WAND's upper bounds above its threshold and it skips little.
    TermAtATime,
}

impl fmt::Display for Bm25Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pruned => "block-max WAND",
            Self::TermAtATime => "term at a time",
        })
    }
}

/// Which BM25 plans may be picked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Bm25Planner {
    /// By the query's size and the index's (the default).
    #[default]
    Cost,
    /// Always [`Bm25Plan::Pruned`] (tests and benchmarks).
    Pruned,
    /// Always [`Bm25Plan::TermAtATime`] (tests and benchmarks).
    TermAtATime,
}

impl Bm25Planner {
    /// The plan for a query of `terms` distinct terms with `postings` postings between them
    /// over an index of `chunks` chunks.
    pub fn plan(self, chunks: usize, terms: usize, postings: u64) -> Bm25Plan {
        match self {
            Self::Pruned => Bm25Plan::Pruned,
            Self::TermAtATime => Bm25Plan::TermAtATime,
            Self::Cost
                if terms >= TERM_AT_A_TIME_MIN_TERMS
                    && chunks <= TERM_AT_A_TIME_MAX_CHUNKS
                    && postings.saturating_mul(TERM_AT_A_TIME_MIN_SHARE as u64)
                        >= chunks as u64 =>
            {
                Bm25Plan::TermAtATime
            }
            Self::Cost => Bm25Plan::Pruned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_indices_and_narrow_readers_scan_exactly() {
        // The handbook: far fewer chunks than one walk costs.
        assert_eq!(
            Planner::Cost.plan(40, 40, 64, 100, 0),
            VectorPlan::Exact { rows: 40 }
        );
        // 10% of 100k readable: the widened walk would pass ~40x more rows than the scan.
        assert_eq!(
            Planner::Cost.plan(100_000, 10_000, 64, 100, 0),
            VectorPlan::Exact { rows: 10_000 }
        );
    }

    #[test]
    fn large_readable_sets_walk_with_a_widened_beam() {
        assert_eq!(
            Planner::Cost.plan(6_590, 6_590, 64, 10, 0),
            VectorPlan::Walk { ef: 64 }
        );
        assert_eq!(
            Planner::Cost.plan(6_590, 6_590, 64, 100, 0),
            VectorPlan::Walk { ef: 100 }
        );
        // 50% readable: the beam triples.
        assert_eq!(
            Planner::Cost.plan(100_000, 50_000, 64, 10, 0),
            VectorPlan::Walk { ef: 192 }
        );
        // 30% readable: 5x, still cheaper than scanning 30k rows.
        assert_eq!(
            Planner::Cost.plan(100_000, 30_000, 64, 10, 0),
            VectorPlan::Walk { ef: 320 }
        );
        // 1% readable: at most 6x.
        assert_eq!(
            Planner::Walk.plan(100_000, 1_000, 64, 10, 0),
            VectorPlan::Walk { ef: 384 }
        );
    }

    #[test]
    fn models_a_graph_serves_poorly_scan_up_to_the_float_budget() {
        // hash-v1 (256-d) on SciFact: 6,590 chunks, under 4M floats.
        let below = EXACT_SCAN_FLOATS / 256;
        assert_eq!(
            Planner::Cost.plan(6_590, 6_590, 64, 100, below),
            VectorPlan::Exact { rows: 6_590 }
        );
        assert_eq!(
            Planner::Cost.plan(100_000, 100_000, 64, 100, below),
            VectorPlan::Walk { ef: 100 }
        );
    }

    #[test]
    fn nothing_readable_or_nothing_asked_is_empty() {
        assert_eq!(Planner::Cost.plan(10, 0, 64, 10, 0), VectorPlan::Empty);
        assert_eq!(Planner::Walk.plan(10, 10, 64, 0, 0), VectorPlan::Empty);
    }

    #[test]
    fn the_cost_plan_is_monotone_in_the_readable_count() {
        // Once the walk wins, it keeps winning as more becomes readable.
        let mut walked = false;
        for allowed in (1..=100_000).step_by(997) {
            let walk = matches!(
                Planner::Cost.plan(100_000, allowed, 64, 10, 0),
                VectorPlan::Walk { .. }
            );
            assert!(walk || !walked, "exact again at {allowed}");
            walked |= walk;
        }
        assert!(walked);
    }

    #[test]
    fn bm25_runs_term_at_a_time_when_the_postings_are_many_and_the_index_fits() {
        let plan = |chunks, terms, postings| Bm25Planner::Cost.plan(chunks, terms, postings);
        assert_eq!(plan(100_000, 50, 150_000), Bm25Plan::TermAtATime);
        assert_eq!(plan(100_000, 3, 1_563), Bm25Plan::TermAtATime);
        assert_eq!(plan(100_000, 3, 1_562), Bm25Plan::Pruned);
        assert_eq!(plan(100_000, 2, 90_000), Bm25Plan::Pruned);
        assert_eq!(plan(100_000, 1, 90_000), Bm25Plan::Pruned);
        assert_eq!(
            plan(TERM_AT_A_TIME_MAX_CHUNKS + 1, 9, u64::MAX),
            Bm25Plan::Pruned
        );
        assert_eq!(
            Bm25Planner::TermAtATime.plan(10, 1, 0),
            Bm25Plan::TermAtATime
        );
        assert_eq!(Bm25Planner::Pruned.plan(10, 9, 100), Bm25Plan::Pruned);
    }
}
