//! The chunk, document and ACL tables of an index (canonical JSON lines).
//!
//! Line `i` of `chunks.jsonl` describes chunk ordinal `i`, which is also the tantivy doc id,
//! the row of `vectors.f32` and the node id in `hnsw.graph`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use quire_core::Acl;
use quire_core::ids::hasher;
use serde::{Deserialize, Serialize};

use crate::error::{IndexError, IoContext, Result};

/// File name of the chunk table.
pub const CHUNKS_FILE: &str = "chunks.jsonl";
/// File name of the document table.
pub const DOCS_FILE: &str = "docs.jsonl";
/// File name of the ACL table.
pub const ACL_FILE: &str = "acl.jsonl";

/// One chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkRecord {
    /// `<doc id>#<ordinal>`.
    pub chunk_id: String,
    /// Row of the chunk's document in `docs.jsonl`.
    pub doc: u32,
    /// Byte offset of the chunk in its document's text.
    pub start: u64,
    /// Byte offset one past its end.
    pub end: u64,
    /// blake3 of the chunk text.
    pub hash: String,
}

/// One document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocRecord {
    /// The document id.
    pub doc_id: String,
    /// Its title, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Its metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Ordinal of its first chunk.
    pub first_chunk: u32,
    /// How many chunks it has.
    pub chunks: u32,
}

/// Who may read one document, after the spec's `default_acl` was applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRecord {
    /// The document id.
    pub doc_id: String,
    /// Its effective ACL (empty: nobody).
    pub acl: Acl,
}

/// The rows of table `name` in the index directory `dir`.
pub(crate) fn read_jsonl<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<Vec<T>> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).at(&path)?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| IndexError::Corrupt {
                file: name.into(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

/// How many documents of the index in `dir` nobody may read: their effective ACL is empty (no
/// ACL of their own and no `default_acl` in the spec). Fail-closed is right, but a build that
/// makes documents unreachable should say so.
pub fn unreadable_documents(dir: &Path) -> Result<u64> {
    let acls = read_jsonl::<AclRecord>(dir, ACL_FILE)?;
    Ok(acls.iter().filter(|r| r.acl.is_empty()).count() as u64)
}

/// Writes rows as JSON lines to a file, optionally hashing exactly the bytes written.
pub(crate) struct JsonlWriter {
    path: PathBuf,
    out: BufWriter<File>,
    line: Vec<u8>,
    hash: Option<blake3::Hasher>,
}

impl JsonlWriter {
    /// Create (or truncate) `path`.
    pub(crate) fn create(path: PathBuf) -> Result<Self> {
        let file = File::create(&path).at(&path)?;
        Ok(Self {
            path,
            out: BufWriter::new(file),
            line: Vec::new(),
            hash: None,
        })
    }

    /// Also hash the written bytes under `context`.
    pub(crate) fn hashed(mut self, context: &str) -> Self {
        self.hash = Some(hasher(context));
        self
    }

    /// Append one row and a newline.
    pub(crate) fn write<T: Serialize>(&mut self, row: &T) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, row)
            .map_err(|e| IndexError::Invalid(format!("{}: {e}", self.path.display())))?;
        self.line.push(b'\n');
        if let Some(h) = &mut self.hash {
            h.update(&self.line);
        }
        self.out.write_all(&self.line).at(&self.path)
    }

    /// Flush and fsync the file; returns the hash of its bytes when [`Self::hashed`].
    pub(crate) fn finish(self) -> Result<Option<String>> {
        let file = self
            .out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)
            .at(&self.path)?;
        file.sync_all().at(&self.path)?;
        Ok(self.hash.map(|h| h.finalize().to_hex().to_string()))
    }
}
