//! Importing corpora into snapshots, and reading the snapshots a data dir holds.

use std::path::Path;

use quire_core::SnapshotId;

use super::{SNAPSHOTS, Store, publish, read_json, resolve, write_json};
use crate::error::{IoContext, Result, StoreError};
use crate::import::{CorpusFormat, canonicalise, read_corpus};
use crate::snapshot::{self, DOCUMENTS_FILE, SNAPSHOT_FILE, SnapshotInfo};

impl Store {
    /// Import the corpus at `path` as a snapshot. Importing the same documents again (in any
    /// order or format) returns the existing snapshot. A refused corpus stores nothing.
    pub fn import(&self, path: &Path, format: Option<CorpusFormat>) -> Result<SnapshotInfo> {
        self.import_recorded(path, format, &path.display().to_string(), None)
    }

    /// Import an uploaded corpus file (JSONL or BEIR); errors name the file as `name`.
    pub fn import_upload(
        &self,
        bytes: &[u8],
        format: Option<CorpusFormat>,
        name: &str,
    ) -> Result<SnapshotInfo> {
        self.upload(bytes, format, name, None)
    }

    fn upload(
        &self,
        bytes: &[u8],
        format: Option<CorpusFormat>,
        name: &str,
        actor: Option<&str>,
    ) -> Result<SnapshotInfo> {
        self.require_write()?;
        let spool = self.scratch("upload")?;
        let path = spool.join("corpus");
        let result = std::fs::write(&path, bytes)
            .at(&path)
            .and_then(|()| self.import_recorded(&path, format, name, actor));
        std::fs::remove_dir_all(&spool).at(&spool)?;
        result
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

    /// [`Store::import_upload`], recorded as done by `actor`.
    pub fn import_upload_as(
        &self,
        bytes: &[u8],
        format: Option<CorpusFormat>,
        name: &str,
        actor: &str,
    ) -> Result<SnapshotInfo> {
        self.upload(bytes, format, name, Some(actor))
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
            None => crate::import::detect_format(path)?,
        };
        let docs = canonicalise(read_corpus(path, format, label)?, Path::new(label))?;
        let scratch = self.scratch("import")?;
        let (snapshot_id, bytes) = snapshot::write_canonical(&docs, &scratch.join(DOCUMENTS_FILE))?;
        let target = self.root.join(SNAPSHOTS).join(snapshot_id.as_str());
        if target.exists() {
            std::fs::remove_dir_all(&scratch).at(&scratch)?;
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

    /// Resolve a snapshot id or a unique prefix of one.
    pub fn resolve_snapshot(&self, target: &str) -> Result<SnapshotId> {
        resolve(
            target,
            SnapshotId::PREFIX,
            "snapshot",
            self.list_ids(SNAPSHOTS)?,
        )
    }
}
