//! BM25 statistics scoped to a reader (issue 14, finding 4).
//!
//! BM25 scores a chunk with three collection statistics: the number of chunks, their total
//! number of tokens (for the average length) and each query term's document frequency. Taken
//! over the whole index, they depend on chunks the reader cannot read: a public chunk's score
//! for a term moved when secret chunks with that term changed. For a reader who may not read
//! every chunk, [`ReaderStatistics`] gives tantivy the statistics of the allowed chunks only:
//!
//! - the chunk count is the allowed set's count;
//! - the token total is the sum of the allowed chunks' token counts ([`chunk_tokens`], read
//!   from the postings once per open index, on the first such query), computed once per
//!   allowed set and kept with it (so in the allowed-set cache, within its byte budget);
//! - a term's document frequency is its posting list counted over the allowed set, per query.
//!
//! Everything else in a score (a chunk's term frequencies and its length) is the chunk's own,
//! so a reader's scores are bit for bit those of an index built from only the documents the
//! reader may read (the property `retrieval_tests` checks). A reader who may read every chunk
//! gets tantivy's own statistics, and none of this runs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use tantivy::index::InvertedIndexReader;
use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, Searcher, TERMINATED, Term};

use crate::ann::Allowed;
use crate::bm25::BM25_DIR;
use crate::error::{IndexError, IoContext, Result};

/// The number of tokens BM25 counted in each chunk (index = chunk ordinal): each chunk's term
/// frequencies summed over every term of `field`, read from the index's one segment. Their sum
/// is checked against the total tantivy recorded when writing the segment.
pub(super) fn chunk_tokens(searcher: &Searcher, field: Field, chunks: usize) -> Result<Vec<u32>> {
    let segment = one_segment(searcher, chunks)?;
    let inverted = segment.inverted_index(field)?;
    let mut tokens = vec![0u32; chunks];
    let mut terms = inverted.terms().stream().at(BM25_DIR)?;
    while terms.advance() {
        let mut postings = inverted
            .read_block_postings_from_terminfo(terms.value(), IndexRecordOption::WithFreqs)
            .at(BM25_DIR)?;
        while !postings.docs().is_empty() {
            for (&doc, &freq) in postings.docs().iter().zip(postings.freqs()) {
                if let Some(count) = tokens.get_mut(doc as usize) {
                    *count = count.saturating_add(freq);
                }
            }
            postings.advance();
        }
    }
    let total: u64 = tokens.iter().map(|&t| u64::from(t)).sum();
    if total != inverted.total_num_tokens() {
        return Err(IndexError::Corrupt {
            file: BM25_DIR.into(),
            reason: format!(
                "the postings hold {total} tokens, the segment records {}",
                inverted.total_num_tokens()
            ),
        });
    }
    Ok(tokens)
}

/// The segment of a quire index: exactly one, holding one doc per chunk.
pub(super) fn one_segment(searcher: &Searcher, chunks: usize) -> Result<&tantivy::SegmentReader> {
    match searcher.segment_readers() {
        [segment] if segment.max_doc() as usize == chunks => Ok(segment),
        segments => Err(IndexError::Corrupt {
            file: BM25_DIR.into(),
            reason: format!(
                "{} segments of {:?} docs for {chunks} chunks",
                segments.len(),
                segments.iter().map(|s| s.max_doc()).collect::<Vec<_>>()
            ),
        }),
    }
}

/// BM25 statistics over the `allowed` chunks: what an index of only those chunks would give.
pub(super) struct ReaderStatistics<'a> {
    allowed: &'a Allowed,
    field: Field,
    tokens: u64,
    inverted: Arc<InvertedIndexReader>,
    /// Document frequencies counted so far: the disjunction and the per-term rescoring
    /// ([`super::top`]) ask for the same terms.
    doc_freqs: RefCell<HashMap<Term, u64>>,
}

impl<'a> ReaderStatistics<'a> {
    /// Statistics of `field` over `allowed`, whose chunks have `chunk_tokens` tokens each.
    pub(super) fn new(
        searcher: &Searcher,
        field: Field,
        allowed: &'a Allowed,
        chunk_tokens: &[u32],
    ) -> Result<Self> {
        let inverted = one_segment(searcher, chunk_tokens.len())?.inverted_index(field)?;
        Ok(Self {
            allowed,
            field,
            tokens: allowed.sum_once(chunk_tokens),
            inverted,
            doc_freqs: RefCell::default(),
        })
    }
}

impl Bm25StatisticsProvider for ReaderStatistics<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        if field != self.field {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "reader statistics cover field {:?}, not {field:?}",
                self.field
            )));
        }
        Ok(self.tokens)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.allowed.count() as u64)
    }

    /// The term's allowed chunks, counted along its posting list.
    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        if let Some(&count) = self.doc_freqs.borrow().get(term) {
            return Ok(count);
        }
        let Some(mut postings) = self
            .inverted
            .read_postings(term, IndexRecordOption::Basic)?
        else {
            return Ok(0);
        };
        let mut count = 0u64;
        let mut doc = postings.doc();
        while doc != TERMINATED {
            count += u64::from(self.allowed.contains(doc));
            doc = postings.advance();
        }
        self.doc_freqs.borrow_mut().insert(term.clone(), count);
        Ok(count)
    }
}
