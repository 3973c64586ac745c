//! Corpus snapshots: canonical, hash-addressed, stored in the data dir.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use quire_core::ids::{context, hasher};
use quire_core::{Document, SnapshotId};
use quire_index::source::{BLOCK_DOCS, BLOCK_TEXT_BYTES};
use quire_index::{DocumentSource, IndexError, Result as IndexResult};
use rayon::prelude::*;

use crate::error::{IoContext, Result, StoreError};

/// File holding a snapshot's canonical documents, one JSON object per line, sorted by id.
pub const DOCUMENTS_FILE: &str = "documents.jsonl";
/// File holding a snapshot's description.
pub const SNAPSHOT_FILE: &str = "snapshot.json";

pub use quire_core::outcome::SnapshotInfo;

/// Write `docs` canonically to `path`, returning the snapshot id and byte count.
pub(crate) fn write_canonical(docs: &[Document], path: &Path) -> Result<(SnapshotId, u64)> {
    let file = std::fs::File::create(path).at(path)?;
    let mut out = BufWriter::new(file);
    let mut h = hasher(context::SNAPSHOT);
    let mut bytes = 0u64;
    for doc in docs {
        let mut line = doc.canonical_json();
        line.push(b'\n');
        h.update(&line);
        out.write_all(&line).at(path)?;
        bytes += line.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.into_error()).at(path)?;
    file.sync_all().at(path)?;
    Ok((SnapshotId::from_hash(h.finalize()), bytes))
}

/// A stored snapshot as a build's document source: parsed again on every pass, a block at a
/// time, its bytes checked against its id at the end of each pass.
pub(crate) struct SnapshotDocuments {
    path: PathBuf,
    id: SnapshotId,
    count: u64,
}

impl SnapshotDocuments {
    /// The documents of snapshot `info`, stored in `dir`.
    pub(crate) fn new(dir: &Path, info: &SnapshotInfo) -> Self {
        Self {
            path: dir.join(DOCUMENTS_FILE),
            id: info.snapshot_id.clone(),
            count: info.documents,
        }
    }

    fn corrupt(&self, problems: String) -> StoreError {
        StoreError::Corrupt {
            id: self.id.to_string(),
            problems,
        }
    }

    fn read(
        &self,
        visit: &mut dyn FnMut(&[Document]) -> IndexResult<()>,
    ) -> Result<IndexResult<()>> {
        let path = &self.path;
        let mut reader = BufReader::new(std::fs::File::open(path).at(path)?);
        let mut h = hasher(context::SNAPSHOT);
        let mut block = RawBlock::new();
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).at(path)? == 0 {
                break;
            }
            h.update(&line);
            if block.push(line) {
                let docs = self.parse(&block)?;
                if let Err(e) = visit(&docs) {
                    return Ok(Err(e));
                }
                block.clear();
            }
        }
        let actual = SnapshotId::from_hash(h.finalize());
        if actual != self.id {
            return Err(self.corrupt(format!("{} hashes to {actual}", path.display())));
        }
        if block.lines.is_empty() {
            return Ok(Ok(()));
        }
        let docs = self.parse(&block)?;
        Ok(visit(&docs))
    }

    /// Parse a block's lines on every thread; the first bad line (in file order) is the error.
    fn parse(&self, block: &RawBlock) -> Result<Vec<Document>> {
        let parsed: Vec<serde_json::Result<Document>> = block
            .lines
            .par_iter()
            .map(|line| serde_json::from_slice(line))
            .collect();
        parsed
            .into_iter()
            .enumerate()
            .map(|(i, doc)| {
                doc.map_err(|e| {
                    let line_no = block.first_line + i;
                    self.corrupt(format!("{}:{line_no}: {e}", self.path.display()))
                })
            })
            .collect()
    }
}

/// The raw lines of one block of documents, parsed together.
struct RawBlock {
    lines: Vec<Vec<u8>>,
    bytes: usize,
    /// 1-based line number of the block's first line.
    first_line: usize,
}

impl RawBlock {
    fn new() -> Self {
        Self {
            lines: Vec::new(),
            bytes: 0,
            first_line: 1,
        }
    }

    /// Add a line; true when the block now holds as many documents or bytes as a block may.
    fn push(&mut self, line: Vec<u8>) -> bool {
        self.bytes += line.len();
        self.lines.push(line);
        self.lines.len() >= BLOCK_DOCS || self.bytes >= BLOCK_TEXT_BYTES
    }

    fn clear(&mut self) {
        self.first_line += self.lines.len();
        self.lines.clear();
        self.bytes = 0;
    }
}

impl DocumentSource for SnapshotDocuments {
    fn document_count(&self) -> u64 {
        self.count
    }

    fn for_each_block(
        &self,
        visit: &mut dyn FnMut(&[Document]) -> IndexResult<()>,
    ) -> IndexResult<()> {
        self.read(visit)
            .map_err(|e| IndexError::Source(Box::new(e)))?
    }
}

/// A build's error, with a failure of [`SnapshotDocuments`] given back as the store error it was.
pub(crate) fn build_error(e: IndexError) -> StoreError {
    match e {
        IndexError::Source(inner) => match inner.downcast::<StoreError>() {
            Ok(store) => *store,
            Err(other) => StoreError::Index(IndexError::Source(other)),
        },
        e => StoreError::Index(e),
    }
}
