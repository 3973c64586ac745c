//! The chunk, document and ACL tables of an index (canonical JSON lines).
//!
//! Line `i` of `chunks.jsonl` describes chunk ordinal `i`, which is also the tantivy doc id,
//! the row of `vectors.f32` and the node id in `hnsw.graph`.

use std::collections::BTreeMap;

use quire_core::Acl;
use serde::{Deserialize, Serialize};

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

/// Serialise rows as JSON lines.
pub fn to_jsonl<T: Serialize>(rows: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        // Plain records of strings, integers and sorted collections always serialise.
        if serde_json::to_writer(&mut out, row).is_ok() {
            out.push(b'\n');
        }
    }
    out
}
