//! Stage reuse: a build takes a stage's files from an index already in the data dir when that
//! stage's inputs are exactly the same.
//!
//! Each reusable stage has a key, a blake3 hash of exactly its inputs:
//!
//! | stage | files | key over |
//! |---|---|---|
//! | `vectors` | `vectors.f32` | model id, cache namespace (digest and precision), dim, every chunk's embedding input hash |
//! | `graph` | `hnsw.graph` | the vectors file's hash, dim, M, ef_construction, builder and its version |
//! | `bm25` | `bm25/` | format version, tantivy version, analyzer, every chunk's title and text (not ACLs: the segment holds none) |
//!
//! Keys are recorded in the manifest's build section. A donor's files are hashed and checked
//! against the donor's manifest before they are copied; a donor that fails the check is skipped
//! and the stage is computed. Copies, not hard links: garbage collection makes a doomed index's
//! files writable before it deletes them, which would reach a linked file too. BM25 files carry
//! the segment id only in their names and `meta.json`, which are renamed for the new index (see
//! [`bm25::rename_segment`]). A reused stage gives byte-identical files to a computed one.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
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

/// A stage taken from a donor.
#[derive(Debug)]
pub(crate) struct Reused {
    /// The donor's id.
    pub index_id: IndexId,
    /// The stage's files as the donor's manifest records them (verified when copied).
    pub files: Vec<FileEntry>,
}

impl Reused {
    /// The recorded hash of the stage's file `path`.
    pub(crate) fn hash_of(&self, path: &str) -> Result<String> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.blake3.clone())
            .ok_or_else(|| IndexError::Invalid(format!("reused stage has no {path}")))
    }
}

/// Copy `stage` from the first donor whose key for it is `key` and whose files verify, into
/// `dir` (the build of `index_id`). Returns what was reused, or `None` when no donor has it.
pub(crate) fn reuse(
    donors: &[Donor],
    stage: &str,
    key: &str,
    dir: &Path,
    index_id: &IndexId,
) -> Result<Option<Reused>> {
    for donor in donors {
        let record = donor.manifest.build.stages.get(stage);
        if record.is_none_or(|r| r.key != key) || donor.manifest.index_id == *index_id {
            continue;
        }
        match copy_stage(donor, stage, dir, index_id) {
            Ok(()) => {
                return Ok(Some(Reused {
                    index_id: donor.manifest.index_id.clone(),
                    files: stage_files(&donor.manifest, stage)
                        .into_iter()
                        .cloned()
                        .collect(),
                }));
            }
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
    if stage != BM25 {
        for entry in files {
            copy_verified(&donor.dir, entry, &dir.join(&entry.path))?;
        }
        return Ok(());
    }
    let prefix = format!("{BM25_DIR}/");
    let names: Vec<String> = files
        .iter()
        .map(|f| f.path.trim_start_matches(&prefix).to_owned())
        .collect();
    let (from, to) = (&donor.manifest.index_id, index_id);
    std::fs::create_dir_all(dir.join(BM25_DIR)).at(dir.join(BM25_DIR))?;
    for (entry, (_, new_name)) in files.iter().zip(bm25::rename_segment(&names, from, to)?) {
        let target = dir.join(BM25_DIR).join(&new_name);
        if new_name != "meta.json" {
            copy_verified(&donor.dir, entry, &target)?;
            continue;
        }
        let bytes = read_verified(&donor.dir, entry)?;
        let meta = String::from_utf8(bytes).map_err(|_| IndexError::Corrupt {
            file: entry.path.clone(),
            reason: "not utf-8".into(),
        })?;
        let meta = bm25::rename_segment_meta(&meta, from, to)?;
        std::fs::write(&target, meta).at(&target)?;
    }
    Ok(())
}

/// Copy the donor's file `entry` to `target` a buffer at a time, failing if its bytes do not
/// match the donor's manifest (`target` is then left for the caller to remove).
fn copy_verified(donor_dir: &Path, entry: &FileEntry, target: &Path) -> Result<()> {
    let source = donor_dir.join(&entry.path);
    let mut reader = File::open(&source).at(&source)?;
    let mut writer = BufWriter::new(File::create(target).at(target)?);
    let mut h = hasher(context::FILE);
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0u64;
    loop {
        let n = reader.read(&mut buf).at(&source)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        writer.write_all(&buf[..n]).at(target)?;
        copied += n as u64;
    }
    writer.flush().at(target)?;
    check_entry(entry, copied, &h)
}

fn read_verified(donor_dir: &Path, entry: &FileEntry) -> Result<Vec<u8>> {
    let source = donor_dir.join(&entry.path);
    let bytes = std::fs::read(&source).at(&source)?;
    let mut h = hasher(context::FILE);
    h.update(&bytes);
    check_entry(entry, bytes.len() as u64, &h)?;
    Ok(bytes)
}

fn check_entry(entry: &FileEntry, bytes: u64, h: &blake3::Hasher) -> Result<()> {
    if bytes != entry.bytes || h.finalize().to_hex().as_str() != entry.blake3 {
        return Err(IndexError::Corrupt {
            file: entry.path.clone(),
            reason: "does not match its manifest".into(),
        });
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
