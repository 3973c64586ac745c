//! Stage reuse: a build takes a stage's files from an index already in the data dir when that
//! stage's inputs are exactly the same.
//!
//! Each reusable stage has a key, a blake3 hash of exactly its inputs:
//!
//! | stage | files | key over |
//! |---|---|---|
//! | `vectors` | `vectors.f32` | model id, cache namespace (digest and precision), dim, every chunk's embedding input hash |
//! | `graph` | `hnsw.graph` | the vectors file's hash, dim, M, ef_construction, builder and its version |
//! | `bm25` | `bm25/` | format version, tantivy version, analyzer, every chunk's title, text and ACL |
//!
//! Keys are recorded in the manifest's build section. A donor's files are hashed and checked
//! against the donor's manifest before they are copied; a donor that fails the check is skipped
//! and the stage is computed. Copies, not hard links: garbage collection makes a doomed index's
//! files writable before it deletes them, which would reach a linked file too. BM25 files carry
//! the segment id only in their names and `meta.json`, which are renamed for the new index (see
//! [`bm25::rename_segment`]). A reused stage gives byte-identical files to a computed one.

use std::path::{Path, PathBuf};

use quire_core::ids::{context, hasher, update_field};
use quire_core::{FileEntry, IndexId, Manifest};

use crate::bm25::{self, BM25_DIR};
use crate::error::{IndexError, IoContext, Result};

/// Stage name of the vectors.
pub const VECTORS: &str = "vectors";
/// Stage name of the HNSW graph.
pub const GRAPH: &str = "graph";
/// Stage name of the BM25 segment.
pub const BM25: &str = "bm25";

/// A published index whose stages a build may reuse.
#[derive(Clone, Debug)]
pub struct Donor {
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest (file hashes and stage keys).
    pub manifest: Manifest,
}

/// A stage key under construction: length-prefixed fields in a fixed order.
pub(crate) struct KeyHasher(blake3::Hasher);

impl KeyHasher {
    pub(crate) fn new(context: &str) -> Self {
        Self(hasher(context))
    }

    pub(crate) fn field(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        update_field(&mut self.0, bytes.as_ref());
        self
    }

    pub(crate) fn optional(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.field([1]).field(v),
            None => self.field([0]),
        }
    }

    pub(crate) fn finish(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// The hash an artifact file entry records for `bytes`.
pub(crate) fn file_hash(bytes: &[u8]) -> String {
    let mut h = hasher(context::FILE);
    h.update(bytes);
    h.finalize().to_hex().to_string()
}

/// Copy `stage` from the first donor whose key for it is `key` and whose files verify, into
/// `dir` (the build of `index_id`). Returns that donor's id, or `None` when no donor has it.
pub(crate) fn reuse(
    donors: &[Donor],
    stage: &str,
    key: &str,
    dir: &Path,
    index_id: &IndexId,
) -> Result<Option<IndexId>> {
    for donor in donors {
        let record = donor.manifest.build.stages.get(stage);
        if record.is_none_or(|r| r.key != key) || donor.manifest.index_id == *index_id {
            continue;
        }
        match copy_stage(donor, stage, dir, index_id) {
            Ok(()) => return Ok(Some(donor.manifest.index_id.clone())),
            Err(e) => {
                tracing::warn!(donor = %donor.manifest.index_id, stage, "not reused: {e}");
                remove_stage(stage, dir)?;
            }
        }
    }
    Ok(None)
}

fn stage_files<'m>(manifest: &'m Manifest, stage: &str) -> Vec<&'m FileEntry> {
    let prefix = format!("{BM25_DIR}/");
    manifest
        .files
        .iter()
        .filter(|f| match stage {
            VECTORS => f.path == crate::VECTORS_FILE,
            GRAPH => f.path == crate::graph::GRAPH_FILE,
            _ => f.path.starts_with(&prefix),
        })
        .collect()
}

fn copy_stage(donor: &Donor, stage: &str, dir: &Path, index_id: &IndexId) -> Result<()> {
    let files = stage_files(&donor.manifest, stage);
    if files.is_empty() {
        return Err(IndexError::Invalid(format!("no files for stage {stage}")));
    }
    let mut copies = Vec::with_capacity(files.len());
    for entry in &files {
        let bytes = std::fs::read(donor.dir.join(&entry.path)).at(donor.dir.join(&entry.path))?;
        if bytes.len() as u64 != entry.bytes || file_hash(&bytes) != entry.blake3 {
            return Err(IndexError::Corrupt {
                file: entry.path.clone(),
                reason: "does not match its manifest".into(),
            });
        }
        copies.push((entry.path.clone(), bytes));
    }
    if stage == BM25 {
        rename_bm25(&mut copies, &donor.manifest.index_id, index_id)?;
        std::fs::create_dir_all(dir.join(BM25_DIR)).at(dir.join(BM25_DIR))?;
    }
    for (path, bytes) in copies {
        let target = dir.join(&path);
        std::fs::write(&target, bytes).at(&target)?;
    }
    Ok(())
}

fn rename_bm25(copies: &mut [(String, Vec<u8>)], from: &IndexId, to: &IndexId) -> Result<()> {
    let prefix = format!("{BM25_DIR}/");
    let names: Vec<String> = copies
        .iter()
        .map(|(p, _)| p.trim_start_matches(&prefix).to_owned())
        .collect();
    let renamed = bm25::rename_segment(&names, from, to)?;
    for ((path, bytes), (_, new_name)) in copies.iter_mut().zip(renamed) {
        if new_name == "meta.json" {
            let meta =
                String::from_utf8(std::mem::take(bytes)).map_err(|_| IndexError::Corrupt {
                    file: path.clone(),
                    reason: "not utf-8".into(),
                })?;
            *bytes = bm25::rename_segment_meta(&meta, from, to)?.into_bytes();
        }
        *path = format!("{prefix}{new_name}");
    }
    Ok(())
}

fn remove_stage(stage: &str, dir: &Path) -> Result<()> {
    let path = match stage {
        VECTORS => dir.join(crate::VECTORS_FILE),
        GRAPH => dir.join(crate::graph::GRAPH_FILE),
        _ => dir.join(BM25_DIR),
    };
    if path.is_dir() {
        std::fs::remove_dir_all(&path).at(&path)
    } else if path.exists() {
        std::fs::remove_file(&path).at(&path)
    } else {
        Ok(())
    }
}
