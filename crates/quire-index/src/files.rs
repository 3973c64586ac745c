//! Listing and hashing the files of an index artifact.

use std::fs::File;
use std::path::Path;

use quire_core::FileEntry;
use quire_core::ids::{context, hasher};

use crate::bm25::EPHEMERAL_FILES;
use crate::error::{IoContext, Result};

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
