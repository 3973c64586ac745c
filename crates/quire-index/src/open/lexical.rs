//! BM25 over an open index: the query's distinct analysed terms, scored with the reader's
//! statistics, their per-term scores summed in term order, by the plan [`Bm25Planner`] picks.

use std::collections::BTreeSet;
use std::sync::Mutex;

use quire_core::Reader;
use tantivy::query::{BooleanQuery, EnableScoring, Query as _, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{Score, Searcher, Term};

use super::{OpenIndex, stats, top};
use crate::ann::Allowed;
use crate::error::Result;
use crate::plan::{Bm25Plan, Bm25Planner, TERM_AT_A_TIME_MIN_TERMS};

/// Score arrays kept for reuse; more queries at once allocate their own.
const SCRATCH_KEPT: usize = 8;

/// Zeroed score arrays, one score per chunk, for term-at-a-time BM25.
#[derive(Default)]
pub(super) struct Scratch(Mutex<Vec<Vec<Score>>>);

impl Scratch {
    /// A zeroed array of `len` scores.
    fn take(&self, len: usize) -> Vec<Score> {
        let kept = self.0.lock().ok().and_then(|mut kept| kept.pop());
        match kept {
            Some(scores) if scores.len() == len => scores,
            _ => vec![0.0; len],
        }
    }

    /// Keep `scores`, which the caller has zeroed again.
    fn put(&self, scores: Vec<Score>) {
        if let Ok(mut kept) = self.0.lock()
            && kept.len() < SCRATCH_KEPT
        {
            kept.push(scores);
        }
    }
}

impl OpenIndex {
    /// BM25 top-`depth` among the chunks `reader` may read: (ordinal, score), best first.
    pub fn bm25(&self, text: &str, reader: &Reader, depth: usize) -> Result<Vec<(u32, f32)>> {
        self.bm25_in(text, Some(&self.allowed(reader)), depth)
    }

    /// BM25 top-`depth` among the `allowed` chunks (`None`: every chunk).
    ///
    /// A chunk outside the set never enters the top-`depth` (so block-max WAND's threshold is
    /// the `depth`-th best score among allowed chunks). Scores use the allowed chunks'
    /// statistics ([`stats`]): they are those of an index of the allowed chunks alone. When
    /// every chunk is allowed there is no filter and tantivy's own statistics serve. Either
    /// plan ([`Self::bm25_plan`]) gives the same chunks and scores.
    pub fn bm25_in(
        &self,
        text: &str,
        allowed: Option<&Allowed>,
        depth: usize,
    ) -> Result<Vec<(u32, f32)>> {
        let terms = self.query_terms(text);
        let allowed = allowed.filter(|a| a.count() < self.chunks.len());
        if terms.is_empty()
            || depth == 0
            || self.chunks.is_empty()
            || allowed.is_some_and(|a| a.count() == 0)
        {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let scoped = match allowed {
            Some(allowed) => Some(stats::ReaderStatistics::new(
                &searcher,
                self.fields.text,
                allowed,
                self.chunk_tokens(&searcher)?,
            )?),
            None => None,
        };
        let scoring = match &scoped {
            Some(scoped) => EnableScoring::enabled_from_statistics_provider(scoped, &searcher),
            None => EnableScoring::enabled_from_searcher(&searcher),
        };
        let segment = stats::one_segment(&searcher, self.chunks.len())?;
        let per_term = terms
            .iter()
            .map(|term| term_query(term).weight(scoring))
            .collect::<tantivy::Result<Vec<_>>>()?;
        let best = match self.plan_terms(&searcher, &terms)? {
            Bm25Plan::TermAtATime => {
                let mut scores = self.bm25_scratch.take(self.chunks.len());
                let best = top::term_at_a_time(&per_term, segment, allowed, depth, &mut scores)?;
                self.bm25_scratch.put(scores);
                best
            }
            Bm25Plan::Pruned => {
                let union = BooleanQuery::union(
                    terms
                        .iter()
                        .map(|term| Box::new(term_query(term)) as _)
                        .collect(),
                );
                let mut top = top::TopAllowed::new(depth, allowed, top::margin(terms.len()));
                union.weight(scoring)?.for_each_pruning(
                    Score::MIN,
                    segment,
                    &mut |doc, score| top.offer(doc, score),
                )?;
                let candidates = top.into_candidates();
                if terms.len() < 2 {
                    candidates
                } else {
                    top::rescore(candidates, &per_term, segment, depth)?
                }
            }
        };
        let mut hits: Vec<(u32, f32)> = best.into_iter().map(|d| (d.doc, d.score)).collect();
        hits.sort_by(|a, b| {
            b.1.total_cmp(&a.1).then_with(|| {
                self.chunks[a.0 as usize]
                    .chunk_id
                    .cmp(&self.chunks[b.0 as usize].chunk_id)
            })
        });
        Ok(hits)
    }

    /// How [`Self::bm25_in`] answers `text`: see [`crate::plan::Bm25Planner`].
    pub fn bm25_plan(&self, text: &str) -> Result<Bm25Plan> {
        let terms = self.query_terms(text);
        self.plan_terms(&self.reader.searcher(), &terms)
    }

    /// The query's distinct analysed terms, in order. Counting repeated query terms once per
    /// occurrence measured slightly worse on SciFact (nDCG@10 0.688 against 0.690).
    fn query_terms(&self, text: &str) -> BTreeSet<Term> {
        let mut analyzer = self.analyzer.clone();
        let mut terms = BTreeSet::new();
        let mut stream = analyzer.token_stream(text);
        while let Some(token) = stream.next() {
            terms.insert(Term::from_field_text(self.fields.text, &token.text));
        }
        terms
    }

    fn plan_terms(&self, searcher: &Searcher, terms: &BTreeSet<Term>) -> Result<Bm25Plan> {
        let mut postings = 0u64;
        if self.bm25_planner == Bm25Planner::Cost && terms.len() >= TERM_AT_A_TIME_MIN_TERMS {
            for term in terms {
                postings += searcher.doc_freq(term)?;
            }
        }
        Ok(self
            .bm25_planner
            .plan(self.chunks.len(), terms.len(), postings))
    }

    /// Each chunk's BM25 token count, read from the postings on first use.
    fn chunk_tokens(&self, searcher: &Searcher) -> Result<&[u32]> {
        if let Some(tokens) = self.chunk_tokens.get() {
            return Ok(tokens);
        }
        let tokens = stats::chunk_tokens(searcher, self.fields.text, self.chunks.len())?;
        // Two first queries at once both read them; either's (equal) counts are kept.
        Ok(self.chunk_tokens.get_or_init(|| tokens))
    }
}

fn term_query(term: &Term) -> TermQuery {
    TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)
}
