//! Listing and hashing the files of an index artifact.

use std::fs::File;
use std::path::Path;

use quire_core::ids::{context, hasher};
use quire_core::manifest::content_digest;
use quire_core::{FileEntry, Manifest};

use crate::bm25::EPHEMERAL_FILES;
use crate::error::{IndexError, IoContext, Result};

/// File name of the manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Every artifact file under `dir` (manifest and tantivy's bookkeeping files excluded), sorted
/// by path, with size and blake3.
pub fn artifact_files(dir: &Path) -> Result<Vec<FileEntry>> {
    let mut paths = Vec::new();
    collect(dir, "", &mut paths)?;
    paths.sort();
    paths
        .into_iter()
        .map(|rel| {
            let path = dir.join(&rel);
            let file = File::open(&path).at(&path)?;
            let bytes = file.metadata().at(&path)?.len();
            let mut h = hasher(context::FILE);
            h.update_reader(file).at(&path)?;
            Ok(FileEntry {
                path: rel,
                bytes,
                blake3: h.finalize().to_hex().to_string(),
            })
        })
        .collect()
}

/// Check every file `manifest` lists under `dir` against its size and blake3, in parallel
/// (sizes first: a truncated file fails without hashing the rest), and the manifest's
/// content digest against its own file list. What an index is opened for serving from: a file
/// edited after publishing, even to the same size, is refused naming it
/// ([`IndexError::Corrupt`]); nothing on disk is changed.
pub fn verify_files(dir: &Path, manifest: &Manifest) -> Result<()> {
    use rayon::prelude::*;
    let changed = |f: &FileEntry, what: String| IndexError::Corrupt {
        file: f.path.clone(),
        reason: format!(
            "{what} since index {} was published; `quire verify {}` lists every difference",
            manifest.index_id, manifest.index_id
        ),
    };
    for f in &manifest.files {
        let len = std::fs::metadata(dir.join(&f.path)).map(|m| m.len()).ok();
        if len != Some(f.bytes) {
            let size = len.map_or("missing".into(), |l| format!("size {l}"));
            return Err(changed(
                f,
                format!("{size}, manifest says {}: changed", f.bytes),
            ));
        }
    }
    if content_digest(&manifest.files) != manifest.content_digest {
        return Err(IndexError::Corrupt {
            file: MANIFEST_FILE.into(),
            reason: "content_digest does not match its own file list".into(),
        });
    }
    manifest.files.par_iter().try_for_each(|f| {
        let path = dir.join(&f.path);
        let mut h = hasher(context::FILE);
        h.update_reader(File::open(&path).at(&path)?).at(&path)?;
        let got = h.finalize().to_hex();
        match got.as_str() == f.blake3 {
            true => Ok(()),
            false => Err(changed(
                f,
                format!("blake3 {got}, manifest says {}: changed", f.blake3),
            )),
        }
    })
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let kind = entry.file_type().at(entry.path())?;
        if kind.is_dir() {
            collect(&entry.path(), &rel, out)?;
        } else if rel != MANIFEST_FILE && !EPHEMERAL_FILES.contains(&name.as_str()) {
            out.push(rel);
        }
    }
    Ok(())
}

/// fsync every file under `dir` and the directories themselves.
pub fn sync_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path).and_then(|f| f.sync_all()).at(&path)?;
        }
    }
    File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

/// Write `bytes` to `dir/name` and fsync it.
pub fn write_synced(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let path = dir.join(name);
    let mut file = File::create(&path).at(&path)?;
    file.write_all(bytes).at(&path)?;
    file.sync_all().at(&path)
}

/// Map `path` into memory, read-only.
#[allow(unsafe_code)]
pub(crate) fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    let file = File::open(path).at(path)?;
    // SAFETY: a memory map is sound as long as no one truncates or rewrites the file while it is
    // mapped. Two kinds of files are mapped. Published index files are immutable by contract:
    // they are written once in tmp/, made read-only, renamed into place and never modified;
    // garbage collection removes whole directories (unlinking keeps the mapped pages valid). A
    // build maps its own `vectors.f32` in its private scratch directory after writing and
    // closing it, and writes nothing to it while the map lives. Only a process deliberately
    // violating the data dir's contract could change either.
    unsafe { memmap2::Mmap::map(&file) }.at(path)
}
