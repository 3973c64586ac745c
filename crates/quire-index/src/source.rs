//! Where a build reads its documents from.
//!
//! A build reads its documents up to three times (chunking, embedding, BM25), a block at a
//! time, and keeps only a few bytes per chunk between passes. So a corpus never has to fit in
//! memory: a stored snapshot is parsed again on each pass instead.

use quire_core::Document;

use crate::error::Result;

/// Documents per block when a source has them in memory already.
pub const BLOCK_DOCS: usize = 4096;
/// Bytes of document text after which a streaming source ends a block.
pub const BLOCK_TEXT_BYTES: usize = 8 << 20;

/// The documents of one snapshot: sorted by id, unique, and the same sequence on every read.
pub trait DocumentSource: Sync {
    /// How many documents there are (for progress totals; the build counts them itself).
    fn document_count(&self) -> u64;

    /// Call `visit` with consecutive blocks of the documents, in order, until every document
    /// was visited or `visit` fails. A block holds at most about [`BLOCK_DOCS`] documents or
    /// [`BLOCK_TEXT_BYTES`] of text (more only when a single document is larger).
    ///
    /// A source that cannot read its documents returns [`crate::IndexError::Source`].
    fn for_each_block(&self, visit: &mut dyn FnMut(&[Document]) -> Result<()>) -> Result<()>;
}

impl DocumentSource for &[Document] {
    fn document_count(&self) -> u64 {
        self.len() as u64
    }

    fn for_each_block(&self, visit: &mut dyn FnMut(&[Document]) -> Result<()>) -> Result<()> {
        self.chunks(BLOCK_DOCS).try_for_each(visit)
    }
}

impl DocumentSource for Vec<Document> {
    fn document_count(&self) -> u64 {
        self.len() as u64
    }

    fn for_each_block(&self, visit: &mut dyn FnMut(&[Document]) -> Result<()>) -> Result<()> {
        self.as_slice().for_each_block(visit)
    }
}

/// Collects documents into blocks as a streaming source reads them.
#[derive(Debug, Default)]
pub struct BlockBuffer {
    docs: Vec<Document>,
    text_bytes: usize,
}

impl BlockBuffer {
    /// Add `doc`; when the block is full, hand it to `visit` and start the next one.
    pub fn push(
        &mut self,
        doc: Document,
        visit: &mut dyn FnMut(&[Document]) -> Result<()>,
    ) -> Result<()> {
        self.text_bytes += doc.text.len();
        self.docs.push(doc);
        if self.docs.len() >= BLOCK_DOCS || self.text_bytes >= BLOCK_TEXT_BYTES {
            self.flush(visit)?;
        }
        Ok(())
    }

    /// Hand the documents left over to `visit`, if any.
    pub fn flush(&mut self, visit: &mut dyn FnMut(&[Document]) -> Result<()>) -> Result<()> {
        if !self.docs.is_empty() {
            visit(&self.docs)?;
        }
        self.docs.clear();
        self.text_bytes = 0;
        Ok(())
    }
}
