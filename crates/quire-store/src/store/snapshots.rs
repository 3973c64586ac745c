//! Importing corpora into snapshots, and reading the snapshots a data dir holds.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use quire_core::SnapshotId;

use super::{SNAPSHOTS, Store, publish, read_json, resolve, write_json};
use crate::error::{IoContext, Result, StoreError};
use crate::import::{CorpusFormat, canonicalise, read_corpus, too_long};
use crate::snapshot::{self, DOCUMENTS_FILE, SNAPSHOT_FILE, SnapshotInfo};

impl Store {
    /// Import the corpus at `path` as a snapshot. Importing the same documents again (in any
    /// order or format) returns the existing snapshot. A refused corpus stores nothing.
    pub fn import(&self, path: &Path, format: Option<CorpusFormat>) -> Result<SnapshotInfo> {
        self.import_recorded(path, format, &path.display().to_string(), None)
    }

    /// Start an upload of a corpus file (JSONL or BEIR) named `name` in errors: its bytes are
    /// spooled to a file in `tmp/` as they arrive ([`Upload::write`]), never held in memory,
    /// and a line longer than the largest document accepted is refused as soon as it is.
    pub fn begin_upload(&self, name: &str) -> Result<Upload> {
        self.require_write()?;
        let dir = self.scratch("upload")?;
        let path = dir.join("corpus");
        let file = match std::fs::File::create(&path).at(&path) {
            Ok(file) => file,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        Ok(Upload {
            file: BufWriter::new(file),
            dir,
            path,
            name: name.to_owned(),
            max: self.options.max_document_bytes,
            line: 1,
            line_bytes: 0,
        })
    }

    /// Import a finished upload (see [`Store::begin_upload`]); its spool file is removed
    /// whatever the outcome.
    pub fn import_upload(
        &self,
        upload: Upload,
        format: Option<CorpusFormat>,
    ) -> Result<SnapshotInfo> {
        self.finish_upload(upload, format, None)
    }

    /// [`Store::import_upload`], recorded as done by `actor`.
    pub fn import_upload_as(
        &self,
        upload: Upload,
        format: Option<CorpusFormat>,
        actor: &str,
    ) -> Result<SnapshotInfo> {
        self.finish_upload(upload, format, Some(actor))
    }

    fn finish_upload(
        &self,
        mut upload: Upload,
        format: Option<CorpusFormat>,
        actor: Option<&str>,
    ) -> Result<SnapshotInfo> {
        upload.file.flush().at(&upload.path)?;
        let (path, name) = (upload.path.clone(), upload.name.clone());
        self.import_recorded(&path, format, &name, actor)
    }

    /// Import as [`Store::import`] does, and record a newly stored snapshot in the audit log
    /// as done by `actor` (importing a stored snapshot again changes nothing and records
    /// nothing).
    pub fn import_as(
        &self,
        path: &Path,
        format: Option<CorpusFormat>,
        actor: &str,
    ) -> Result<SnapshotInfo> {
        self.import_recorded(path, format, &path.display().to_string(), Some(actor))
    }

    fn import_recorded(
        &self,
        path: &Path,
        format: Option<CorpusFormat>,
        label: &str,
        actor: Option<&str>,
    ) -> Result<SnapshotInfo> {
        self.require_write()?;
        let format = match format {
            Some(f) => f,
            None => crate::import::detect_format(path, label, self.options.max_document_bytes)?,
        };
        let docs = canonicalise(
            read_corpus(path, format, label, self.options.max_document_bytes)?,
            Path::new(label),
        )?;
        let scratch = self.scratch("import")?;
        let (snapshot_id, bytes) = snapshot::write_canonical(&docs, &scratch.join(DOCUMENTS_FILE))?;
        let target = self.root.join(SNAPSHOTS).join(snapshot_id.as_str());
        if target.exists() {
            std::fs::remove_dir_all(&scratch).at(&scratch)?;
            self.publish_snapshot(&snapshot_id)?;
            return self.snapshot(&snapshot_id);
        }
        let info = SnapshotInfo {
            snapshot_id,
            documents: docs.len() as u64,
            bytes,
            imported_at: jiff::Timestamp::now().to_string(),
            source: label.to_owned(),
            format: format.name().into(),
        };
        write_json(&scratch.join(SNAPSHOT_FILE), &info)?;
        publish(&scratch, &target)?;
        self.publish_snapshot(&info.snapshot_id)?;
        if let Some(actor) = actor {
            self.record_import(&info, actor)?;
        }
        Ok(info)
    }

    /// Describe a stored snapshot.
    pub fn snapshot(&self, id: &SnapshotId) -> Result<SnapshotInfo> {
        let path = self
            .root
            .join(SNAPSHOTS)
            .join(id.as_str())
            .join(SNAPSHOT_FILE);
        if !path.exists() {
            return Err(StoreError::NotFound {
                kind: "snapshot",
                id: id.to_string(),
            });
        }
        read_json(&path)
    }

    /// Every stored snapshot, by id.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        self.list_ids::<SnapshotId>(SNAPSHOTS)?
            .iter()
            .map(|id| self.snapshot(id))
            .collect()
    }

    /// Resolve a snapshot id or a unique prefix of one: among this data dir's snapshots, else
    /// the shared store's.
    pub fn resolve_snapshot(&self, target: &str) -> Result<SnapshotId> {
        let kind = "snapshot";
        match resolve(target, SnapshotId::PREFIX, kind, self.list_ids(SNAPSHOTS)?) {
            Err(StoreError::NotFound { .. }) if self.artifacts().is_some() => resolve(
                target,
                SnapshotId::PREFIX,
                kind,
                self.shared_snapshot_ids()?,
            ),
            resolved => resolved,
        }
    }
}

/// A corpus upload being spooled to a file in the data dir's `tmp/` (see
/// [`Store::begin_upload`]). Dropping it unfinished removes the file.
pub struct Upload {
    file: BufWriter<std::fs::File>,
    dir: PathBuf,
    path: PathBuf,
    name: String,
    max: u64,
    /// The line the next byte belongs to (from 1), and its bytes so far.
    line: u64,
    line_bytes: u64,
}

impl Upload {
    /// Append the next piece of the file, refusing a line longer than the largest document
    /// accepted as soon as it passes the limit.
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.extend_line(end)?;
            self.line += 1;
            self.line_bytes = 0;
            rest = &rest[end + 1..];
        }
        self.extend_line(rest.len())?;
        self.file.write_all(chunk).at(&self.path)
    }

    fn extend_line(&mut self, bytes: usize) -> Result<()> {
        self.line_bytes += bytes as u64;
        if self.line_bytes > self.max {
            return Err(too_long(
                format!("{}:{}", self.name, self.line),
                "line",
                self.max,
            ));
        }
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
