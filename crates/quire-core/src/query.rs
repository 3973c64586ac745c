//! Queries and responses of retrieval, free of any transport.

use std::collections::BTreeMap;

use crate::spec::FusionMethod;
use crate::{IndexId, Reader, SnapshotId};
use serde::Serialize;

/// Which retrievers answer a query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 and vectors, fused.
    #[default]
    Hybrid,
    /// BM25 only.
    Bm25,
    /// Vectors only.
    Vector,
}

impl Mode {
    /// `hybrid`, `bm25` or `vector`, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::Bm25 => "bm25",
            Self::Vector => "vector",
        }
    }
}

/// A retrieval request against one opened index.
#[derive(Clone, Debug)]
pub struct Query {
    /// The query text.
    pub text: String,
    /// Who is asking; only chunks this reader may read are considered.
    pub reader: Reader,
    /// Hits to return.
    pub k: usize,
    /// Retrievers to use.
    pub mode: Mode,
    /// Fusion method; the index's spec decides when `None`.
    pub fusion: Option<FusionMethod>,
    /// Candidates per retriever before fusion; the spec decides when `None`.
    pub candidates: Option<usize>,
}

/// One retriever's view of a hit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RetrieverHit {
    /// 1-based rank among this retriever's candidates.
    pub rank: u32,
    /// The retriever's own score (BM25, or cosine similarity).
    pub score: f32,
}

/// One retrieved chunk.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hit {
    /// `<doc id>#<ordinal>`.
    pub chunk_id: String,
    /// The document id.
    pub doc_id: String,
    /// The document title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The chunk text.
    pub text: String,
    /// The fused score (or the single retriever's score).
    pub score: f64,
    /// BM25's rank and score, when BM25 found the chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bm25: Option<RetrieverHit>,
    /// The vector retriever's rank and score, when it found the chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<RetrieverHit>,
    /// The document's metadata.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// Which artifact answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lineage {
    /// The index id.
    pub index_id: IndexId,
    /// Its content digest.
    pub content_digest: String,
    /// The snapshot it was built from.
    pub snapshot_id: SnapshotId,
    /// The embedding model that embedded the query.
    pub embedding_model: String,
    /// That model's digest (the one the index was built with).
    pub embedding_digest: String,
    /// The name the target was resolved through, when it was not an index id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The alias revision that served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// The alias arm that served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<Arm>,
}

/// The arm of a release alias that answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    /// The primary index.
    Primary,
    /// The canary index.
    Canary,
}

impl Arm {
    /// `primary` or `canary`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Canary => "canary",
        }
    }
}

/// Time spent per step, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// Embedding the query.
    pub embed: u64,
    /// BM25 search.
    pub bm25: u64,
    /// Vector search.
    pub vector: u64,
    /// Fusion and hit assembly.
    pub fusion: u64,
    /// Everything.
    pub total: u64,
}

/// The answer to a [`Query`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Response {
    /// Hits, best first.
    pub hits: Vec<Hit>,
    /// Which artifact answered.
    pub lineage: Lineage,
    /// True when the reader may read no chunk of the index: no hits because of permissions, not
    /// because nothing matched. Says nothing about documents the reader may not read.
    pub nothing_readable: bool,
    /// Step timings.
    pub timings_us: Timings,
    /// CPU time per step on the threads that ran it (`total` is the whole query's, steps and
    /// the work between them); a parallel side's CPU counts in full.
    pub cpu_us: Timings,
    /// The server's id of this request (unique, unguessable): what feedback on the answer names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}
