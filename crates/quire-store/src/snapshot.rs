//! Corpus snapshots: canonical, hash-addressed, stored in the data dir.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use quire_core::ids::{context, hasher};
use quire_core::{Document, SnapshotId};

use crate::error::{IoContext, Result, StoreError};

/// File holding a snapshot's canonical documents, one JSON object per line, sorted by id.
pub const DOCUMENTS_FILE: &str = "documents.jsonl";
/// File holding a snapshot's description.
pub const SNAPSHOT_FILE: &str = "snapshot.json";

pub use quire_core::outcome::SnapshotInfo;

/// Write `docs` canonically to `path`, returning the snapshot id and byte count.
pub(crate) fn write_canonical(docs: &[Document], path: &Path) -> Result<(SnapshotId, u64)> {
    let file = std::fs::File::create(path).at(path)?;
    let mut out = BufWriter::new(file);
    let mut h = hasher(context::SNAPSHOT);
    let mut bytes = 0u64;
    for doc in docs {
        let mut line = doc.canonical_json();
        line.push(b'\n');
        h.update(&line);
        out.write_all(&line).at(path)?;
        bytes += line.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.into_error()).at(path)?;
    file.sync_all().at(path)?;
    Ok((SnapshotId::from_hash(h.finalize()), bytes))
}

/// Read a stored snapshot back, checking that its bytes still hash to its id.
pub(crate) fn read_canonical(dir: &Path, id: &SnapshotId) -> Result<Vec<Document>> {
    let path = dir.join(DOCUMENTS_FILE);
    let mut reader = BufReader::new(std::fs::File::open(&path).at(&path)?);
    let mut h = hasher(context::SNAPSHOT);
    let mut docs = Vec::new();
    let mut line = Vec::new();
    let mut line_no = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).at(&path)? == 0 {
            break;
        }
        line_no += 1;
        h.update(&line);
        let doc: Document = serde_json::from_slice(&line).map_err(|e| StoreError::Corrupt {
            id: id.to_string(),
            problems: format!("{}:{line_no}: {e}", path.display()),
        })?;
        docs.push(doc);
    }
    let actual = SnapshotId::from_hash(h.finalize());
    if &actual != id {
        return Err(StoreError::Corrupt {
            id: id.to_string(),
            problems: format!("{} hashes to {actual}", path.display()),
        });
    }
    Ok(docs)
}
