//! Immutable hybrid indices: build, verify and search them.
//!
//! An index directory holds:
//!
//! | file | what |
//! |---|---|
//! | `bm25/` | a single-segment tantivy index over title and chunk text |
//! | `vectors.f32` | one L2-normalised vector per chunk, little-endian f32, row-major |
//! | `hnsw.graph` | the HNSW graph (built by hnsw_rs or by [`hnsw_build`], per the spec), in flat arrays ([`graph`]) |
//! | `chunks.jsonl`, `docs.jsonl`, `acl.jsonl` | the chunk, document and ACL tables ([`tables`]) |
//! | `manifest.json` | the [`Manifest`](quire_core::Manifest): ids, spec, counts, file hashes |
//!
//! A build reads its documents from a [`DocumentSource`] in passes, a block at a time, so the
//! corpus never has to fit in memory; the graph is built from a memory map of the vectors file.
//!
//! Chunk ordinal `i` is line `i` of `chunks.jsonl`, tantivy doc `i`, vector row `i` and graph
//! node `i`. Every file is a pure function of the snapshot and the spec: [`build_index`] writes
//! them in a fixed order with fixed summation orders and no hash-map iteration, so the same
//! inputs give byte-identical artifacts on any machine and any thread count.
//!
//! Main entry points: [`build_index`], [`verify_dir`], [`read_manifest`], and [`OpenIndex`],
//! which answers a [`Query`] with a [`Response`]: BM25 and vector search, each filtered by the
//! reader's permissions inside the search (the reader's allowed set of chunks, a bitset, inside
//! BM25's top-k loop and inside the graph walk, or an exact scan when that is cheaper: see
//! [`plan`]), fused by reciprocal rank or weighted scores ([`fusion`]).

pub mod ann;
pub mod bm25;
mod build;
pub mod cache;
pub mod cpu;
pub mod distance;
mod error;
mod files;
pub mod fusion;
pub mod graph;
pub mod hnsw_build;
pub mod kernel;
mod open;
pub mod plan;
pub use quire_core::query;
#[cfg(test)]
mod retrieval_tests;
pub mod source;
pub mod stages;
pub mod tables;
pub mod trace;
mod vectors;
mod verify;

pub use build::{BuildRequest, NoProgress, Progress, VECTORS_FILE, build_index, write_manifest};
pub use cache::EmbedCache;
pub use error::{IndexError, Result};
pub use files::{MANIFEST_FILE, artifact_files, sync_tree, verify_files, write_synced};
pub use open::{ALLOWED_CACHE_BYTES, OpenIndex};
pub use plan::{Bm25Plan, Bm25Planner, Planner, VectorPlan};
pub use query::{Arm, Hit, Lineage, Mode, Query, Response, RetrieverHit, Timings};
pub use source::DocumentSource;
pub use stages::Donor;
pub use verify::{Verification, identity_problem, read_manifest, verify_dir};

/// Index formats this quire opens. Format 3 dropped the ACL field from the BM25 segment
/// (permissions are filtered by the allowed set instead); a format 2 segment's ACL field is
/// ignored, so format 2 indices still serve.
pub const READABLE_FORMATS: std::ops::RangeInclusive<u32> = 2..=quire_core::FORMAT_VERSION;

/// The tantivy release that writes the BM25 index (checked against Cargo.lock by a test).
pub const TANTIVY_VERSION: &str = "0.27.0";
/// The hnsw_rs release that builds the graph (checked against Cargo.lock by a test).
pub const HNSW_RS_VERSION: &str = "0.3.5";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_library_versions_match_the_lockfile() {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock"))
                .unwrap_or_default();
        for (name, version) in [("tantivy", TANTIVY_VERSION), ("hnsw_rs", HNSW_RS_VERSION)] {
            let entry = format!("name = \"{name}\"\nversion = \"{version}\"");
            assert!(
                lock.contains(&entry),
                "Cargo.lock does not pin {name} {version}"
            );
        }
    }
}
