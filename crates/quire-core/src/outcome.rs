//! What the store reports about artifacts: snapshot and index summaries, build, verify and
//! rebuild outcomes, and the corpus formats it reads. Plain data, shared by the store, the
//! services and the wire crate.

use crate::{IndexId, Manifest, SnapshotId};
use serde::{Deserialize, Serialize};

/// Corpus formats quire reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorpusFormat {
    /// quire JSONL.
    Jsonl,
    /// BEIR `corpus.jsonl`.
    Beir,
    /// A directory of `.md` and `.txt` files, with an optional `quire-acl.toml`.
    Dir,
}

impl CorpusFormat {
    /// The format's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            CorpusFormat::Jsonl => "jsonl",
            CorpusFormat::Beir => "beir",
            CorpusFormat::Dir => "dir",
        }
    }
}

/// What the data dir knows about a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotInfo {
    /// `snap-` + blake3 of the canonical documents.
    pub snapshot_id: SnapshotId,
    /// Number of documents.
    pub documents: u64,
    /// Size of the canonical form in bytes.
    pub bytes: u64,
    /// When it was first imported (RFC 3339 UTC).
    pub imported_at: String,
    /// The path it was first imported from.
    pub source: String,
    /// The format it was read as.
    pub format: String,
}

/// The result of a build.
#[derive(Clone, Debug, Serialize)]
pub struct BuildOutcome {
    /// The index's manifest.
    pub manifest: Manifest,
    /// True when the index already existed, verified, and nothing was built.
    pub reused: bool,
    /// Documents nobody may read: no ACL of their own and no `default_acl` in the spec.
    pub unreadable_documents: u64,
}

/// One line of `quire indexes`.
#[derive(Clone, Debug, Serialize)]
pub struct IndexSummary {
    /// The index id.
    pub index_id: IndexId,
    /// Its content digest.
    pub content_digest: String,
    /// The snapshot it was built from.
    pub snapshot_id: SnapshotId,
    /// Documents and chunks.
    pub documents: u64,
    /// Chunks indexed.
    pub chunks: u64,
    /// Embedding model.
    pub model: String,
    /// When it was built.
    pub built_at: String,
    /// Newest source document (or import time).
    pub source_freshness: String,
    /// Whether the source is older than the spec's freshness window (`None`: no window).
    pub stale: Option<bool>,
}

/// An index's manifest and whether its source is stale.
#[derive(Clone, Debug, Serialize)]
pub struct IndexInfo {
    /// The manifest.
    pub manifest: Manifest,
    /// Whether the source is older than the spec's freshness window (`None`: no window).
    pub stale: Option<bool>,
}

/// The outcome of `verify` for one index.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// The index verified.
    pub index_id: IndexId,
    /// The result.
    #[serde(flatten)]
    pub verification: Verification,
}

/// The outcome of rebuilding an index from its stored snapshot and spec.
#[derive(Clone, Debug, Serialize)]
pub struct RebuildCheck {
    /// Whether id and digest both match.
    pub ok: bool,
    /// The stored index id.
    pub index_id: IndexId,
    /// The id the rebuild produced.
    pub rebuilt_index_id: IndexId,
    /// The stored content digest.
    pub content_digest: String,
    /// The digest the rebuild produced.
    pub rebuilt_content_digest: String,
    /// Files whose contents differ between the two.
    pub differing_files: Vec<String>,
    /// What differed in how the two were built that may explain a difference (e.g. the CPU
    /// kernel path of the embedding model).
    pub notes: Vec<String>,
}

/// The outcome of verifying an index directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Whether every check passed.
    pub ok: bool,
    /// The content digest recomputed from the files on disk.
    pub content_digest: String,
    /// Everything that differs, one line each, naming the file or field.
    pub problems: Vec<String>,
}
