//! The manifest that describes a built index.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{IndexId, SnapshotId, context, hasher, update_field};
use crate::spec::BuildSpec;

/// `manifest.json` of an index. Everything except [`Manifest::build`] is determined by the
/// snapshot and the spec; `build` records how this particular build went and is excluded from
/// the index id and the content digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The index id: derived from snapshot id, canonical spec and format version.
    pub index_id: IndexId,
    /// Merkle root over [`Manifest::files`].
    pub content_digest: String,
    /// The snapshot the index was built from.
    pub snapshot_id: SnapshotId,
    /// The canonical build spec.
    pub spec: BuildSpec,
    /// Sizes of the index.
    pub counts: Counts,
    /// The embedding model the vectors came from; queries must use the same one.
    pub embedding: ModelInfo,
    /// blake3 of the ACL table: changes exactly when who may read what changes.
    pub permission_digest: String,
    /// Versions of the format and of the libraries that wrote the artifact.
    pub versions: Versions,
    /// Every file of the artifact (manifest excluded) with its size and blake3.
    pub files: Vec<FileEntry>,
    /// Facts about this build run; not part of the id or digest.
    pub build: BuildInfo,
}

/// Sizes of an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Documents in the snapshot.
    pub documents: u64,
    /// Chunks indexed.
    pub chunks: u64,
    /// Vectors in the vector index (one per chunk).
    pub vectors: u64,
}

/// Identity of an embedding model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    /// The model's name, e.g. `hash-v1`.
    pub model_id: String,
    /// blake3 over the model's definition (parameters or weights).
    pub digest: String,
    /// Vector dimension.
    pub dim: u32,
}

/// Versions that wrote an artifact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    /// quire's on-disk format version.
    pub format: u32,
    /// The quire release.
    pub quire: String,
    /// tantivy, which wrote the BM25 index.
    pub tantivy: String,
    /// hnsw_rs, which built the graph.
    pub hnsw_rs: String,
}

/// One file of an artifact.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the index directory, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// blake3 of the contents (context [`context::FILE`]).
    pub blake3: String,
}

/// How one build went. Varies between builds of the same index.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildInfo {
    /// When the build finished, RFC 3339 UTC.
    pub built_at: String,
    /// Newest `updated_at` among the documents, else the snapshot's import time.
    pub source_freshness: String,
    /// Wall time per stage, in milliseconds.
    pub timings_ms: BTreeMap<String, u64>,
    /// Worker threads available to the build.
    pub threads: u32,
    /// Chunks whose vectors came from the embedding cache (hits) or were computed (misses).
    #[serde(default)]
    pub embed_cache: EmbedCacheStats,
    /// The CPU kernel path that computed the vectors (`avx512`, `avx2-fma`, `scalar`), for
    /// models that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed_kernel: Option<String>,
    /// The reusable stages (`vectors`, `graph`, `bm25`) by name: each one's key, a hash of
    /// exactly its inputs, and the index its files were taken from when the build reused them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stages: BTreeMap<String, StageRecord>,
}

/// One reusable stage of a build.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRecord {
    /// Hash of exactly the stage's inputs: two builds with equal keys write equal files.
    pub key: String,
    /// The index whose verified files this build linked instead of computing them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused_from: Option<IndexId>,
}

/// Embedding-cache lookups during one build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedCacheStats {
    /// Chunks whose vector was found in the cache.
    pub hits: u64,
    /// Chunks whose vector was computed (and then stored in the cache).
    pub misses: u64,
}

/// The content digest over a set of files: a Merkle root of the sorted (path, file hash) pairs.
pub fn content_digest(files: &[FileEntry]) -> String {
    let mut sorted: Vec<_> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut h = hasher(context::CONTENT_DIGEST);
    for f in sorted {
        update_field(&mut h, f.path.as_bytes());
        update_field(&mut h, f.blake3.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, hash: &str) -> FileEntry {
        FileEntry {
            path: path.into(),
            bytes: 1,
            blake3: hash.into(),
        }
    }

    #[test]
    fn digest_ignores_listing_order_but_not_content_or_names() {
        let a = [entry("a", "1"), entry("b", "2")];
        let b = [entry("b", "2"), entry("a", "1")];
        assert_eq!(content_digest(&a), content_digest(&b));
        assert_ne!(
            content_digest(&a),
            content_digest(&[entry("a", "1"), entry("b", "3")])
        );
        assert_ne!(
            content_digest(&a),
            content_digest(&[entry("a", "1"), entry("c", "2")])
        );
    }
}
