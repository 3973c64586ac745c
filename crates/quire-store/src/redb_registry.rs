//! The redb [`Registry`]: a database in the data dir (`registry.redb`) holding alias
//! revisions, pins, the audit log, manifests and evaluation reports.
//!
//! Every mutation is one redb write transaction, committed with immediate durability, that
//! also appends its audit event: a change and its evidence land together or not at all, and a
//! killed process leaves the last committed state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quire_core::{IndexId, Manifest};
use quire_release::outcome::FeedbackRecord;
use quire_release::{
    AliasRevision, AuditVerification, CanaryReport, Pin, ReportRecord, SampleQuery, SampleRecord,
};
use redb::{
    Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction,
};

use crate::access::Access;
use crate::audit::{self, AuditDraft, AuditEvent};
use crate::error::{Result, StoreError};
use crate::registry::{Decide, Published, Registry};
use crate::tables::{
    ALIAS_REVISIONS, AUDIT, CANARY_REPORTS, DELETING, EVAL_REPORTS, FEEDBACK, MANIFESTS, META,
    PINS, SAMPLES, db_err, decode, encode,
};

/// The registry's file name inside the data dir.
pub const REGISTRY_FILE: &str = "registry.redb";

const SCHEMA_VERSION: &[u8] = b"1";

enum Db {
    Write(Database),
    Read(ReadOnlyDatabase),
    /// A reader of a data dir that has never had a registry: everything is empty.
    Absent,
}

/// The open registry.
pub(crate) struct RedbRegistry {
    path: PathBuf,
    db: Db,
}

impl std::fmt::Debug for RedbRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbRegistry")
            .field("path", &self.path)
            .finish()
    }
}

/// Open read-only. A registry last held by a process that was killed needs redb's repair,
/// which a read-only open refuses; the caller holds the data dir's shared lock, so no writer
/// is running, and repairing (opening writable once, then closing cleanly) changes no
/// committed data. Another reader repairing at the same moment holds redb's file lock: wait
/// for it briefly.
fn open_read_only(path: &Path) -> std::result::Result<ReadOnlyDatabase, redb::Error> {
    let mut attempts = 0;
    loop {
        match ReadOnlyDatabase::open(path) {
            Ok(db) => return Ok(db),
            Err(redb::DatabaseError::RepairAborted)
            | Err(redb::DatabaseError::DatabaseAlreadyOpen)
                if attempts < 50 =>
            {
                attempts += 1;
                match Database::open(path) {
                    Ok(db) => drop(db),
                    Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl RedbRegistry {
    /// Open (a writer: create) the registry of the data dir at `root`.
    pub(crate) fn open(root: &Path, access: Access) -> Result<Self> {
        let path = root.join(REGISTRY_FILE);
        let err = |e: redb::Error| StoreError::Registry {
            path: root.join(REGISTRY_FILE),
            reason: e.to_string(),
        };
        let db = match access {
            Access::Write => {
                let db = Database::create(&path).map_err(|e| err(e.into()))?;
                let registry = Self {
                    path: path.clone(),
                    db: Db::Write(db),
                };
                registry.init()?;
                return Ok(registry);
            }
            Access::Read if path.exists() => Db::Read(open_read_only(&path).map_err(err)?),
            Access::Read => Db::Absent,
        };
        Ok(Self { path, db })
    }

    /// Create every table, so readers never meet a missing one, and check the schema. A
    /// registry that has them is not written to.
    fn init(&self) -> Result<()> {
        let ready = self.read(|tx| {
            let meta = match tx.open_table(META) {
                Ok(meta) => meta,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
                Err(e) => return Err(db_err(&self.path)(e.into())),
            };
            let schema = meta
                .get("schema")
                .map_err(|e| db_err(&self.path)(e.into()))?
                .map(|v| v.value().to_vec());
            // Tables added after schema 1 are created by the writer's first open.
            let newer = tx.open_table(SAMPLES).is_ok()
                && tx.open_table(CANARY_REPORTS).is_ok()
                && tx.open_table(FEEDBACK).is_ok()
                && tx.open_table(DELETING).is_ok();
            Ok(schema.as_deref() == Some(SCHEMA_VERSION) && newer)
        })?;
        if ready == Some(true) {
            return Ok(());
        }
        self.write_raw(|tx| {
            let err = db_err(&self.path);
            tx.open_table(ALIAS_REVISIONS).map_err(|e| err(e.into()))?;
            tx.open_table(PINS).map_err(|e| err(e.into()))?;
            tx.open_table(AUDIT).map_err(|e| err(e.into()))?;
            tx.open_table(MANIFESTS).map_err(|e| err(e.into()))?;
            tx.open_table(EVAL_REPORTS).map_err(|e| err(e.into()))?;
            tx.open_table(SAMPLES).map_err(|e| err(e.into()))?;
            tx.open_table(CANARY_REPORTS).map_err(|e| err(e.into()))?;
            tx.open_table(FEEDBACK).map_err(|e| err(e.into()))?;
            tx.open_table(DELETING).map_err(|e| err(e.into()))?;
            let mut meta = tx.open_table(META).map_err(|e| err(e.into()))?;
            let schema = meta
                .get("schema")
                .map_err(|e| err(e.into()))?
                .map(|v| v.value().to_vec());
            match schema {
                None => {
                    meta.insert("schema", SCHEMA_VERSION)
                        .map_err(|e| err(e.into()))?;
                }
                Some(v) if v.as_slice() == SCHEMA_VERSION => {}
                Some(v) => {
                    return Err(StoreError::Registry {
                        path: self.path.clone(),
                        reason: format!(
                            "schema version {:?} is not the supported {:?}",
                            String::from_utf8_lossy(&v),
                            String::from_utf8_lossy(SCHEMA_VERSION)
                        ),
                    });
                }
            }
            Ok(())
        })
    }

    /// The registry's path.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` in one write transaction and commit it durably; nothing is written if `f` fails.
    pub(crate) fn write_raw<T>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T>) -> Result<T> {
        let err = db_err(&self.path);
        let Db::Write(db) = &self.db else {
            return Err(StoreError::ReadOnly {
                path: self.path.clone(),
            });
        };
        let tx = db.begin_write().map_err(|e| err(e.into()))?;
        let value = f(&tx)?;
        tx.commit().map_err(|e| err(e.into()))?;
        Ok(value)
    }

    /// Run `f` in one write transaction that also appends the audit event `draft` returns
    /// alongside the value.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<(T, AuditDraft)>,
    ) -> Result<(T, AuditEvent)> {
        self.write_raw(|tx| {
            let (value, draft) = f(tx)?;
            let event = audit::append(tx, &self.path, draft)?;
            Ok((value, event))
        })
    }

    /// Run `f` over a consistent read view; `None` when the registry does not exist (a reader
    /// of a data dir that never had one).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T>,
    ) -> Result<Option<T>> {
        let err = db_err(&self.path);
        let tx = match &self.db {
            Db::Write(db) => db.begin_read().map_err(|e| err(e.into()))?,
            Db::Read(db) => db.begin_read().map_err(|e| err(e.into()))?,
            Db::Absent => return Ok(None),
        };
        f(&tx).map(Some)
    }
}

/// Every revision of `alias` in `table`, oldest first.
fn history_in(
    table: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    path: &Path,
    alias: &str,
) -> Result<Vec<AliasRevision>> {
    let err = db_err(path);
    let mut out = Vec::new();
    for entry in table
        .range((alias, 0)..=(alias, u64::MAX))
        .map_err(|e| err(e.into()))?
    {
        let (_, value) = entry.map_err(|e| err(e.into()))?;
        out.push(decode(path, value.value())?);
    }
    Ok(out)
}

/// Every stored report, oldest first (by creation time, then id).
fn all_reports(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    path: &Path,
) -> Result<Vec<ReportRecord>> {
    let err = db_err(path);
    let mut out: Vec<ReportRecord> = Vec::new();
    for entry in table.iter().map_err(|e| err(e.into()))? {
        let (_, v) = entry.map_err(|e| err(e.into()))?;
        out.push(decode(path, v.value())?);
    }
    out.sort_by(|a, b| (&a.created, &a.report_id).cmp(&(&b.created, &b.report_id)));
    Ok(out)
}

/// Every sample `query` selects from `table`.
fn samples_in(
    table: &impl ReadableTable<(&'static str, u64, &'static str), &'static [u8]>,
    path: &Path,
    query: &SampleQuery,
) -> Result<Vec<SampleRecord>> {
    let err = db_err(path);
    let mut out = Vec::new();
    let entries = match &query.alias {
        Some(alias) => table.range((alias.as_str(), query.since_us, "")..),
        None => table.iter(),
    }
    .map_err(|e| err(e.into()))?;
    for entry in entries {
        let (key, value) = entry.map_err(|e| err(e.into()))?;
        let (alias, _, _) = key.value();
        if query.alias.as_deref().is_some_and(|a| a != alias) {
            break;
        }
        out.push(decode(path, value.value())?);
    }
    Ok(query.select(out))
}

/// Canary reports oldest first, by creation time then id, as every backend returns them.
pub(crate) fn sort_canary_reports(reports: &mut [CanaryReport]) {
    reports.sort_by(|a, b| (a.created_us, &a.report_id).cmp(&(b.created_us, &b.report_id)));
}

impl Registry for RedbRegistry {
    /// Every alias revision, grouped per alias, oldest first (empty when there is no registry).
    fn alias_revisions(&self) -> Result<BTreeMap<String, Vec<AliasRevision>>> {
        let path = self.path.clone();
        let out = self.read(|tx| {
            let err = db_err(&path);
            let table = tx.open_table(ALIAS_REVISIONS).map_err(|e| err(e.into()))?;
            let mut out: BTreeMap<String, Vec<AliasRevision>> = BTreeMap::new();
            for entry in table.iter().map_err(|e| err(e.into()))? {
                let (_, value) = entry.map_err(|e| err(e.into()))?;
                let revision: AliasRevision = decode(&path, value.value())?;
                out.entry(revision.alias.clone())
                    .or_default()
                    .push(revision);
            }
            Ok(out)
        })?;
        Ok(out.unwrap_or_default())
    }

    fn alias_history(&self, alias: &str) -> Result<Vec<AliasRevision>> {
        let path = self.path.clone();
        Ok(self
            .read(|tx| {
                let err = db_err(&path);
                let table = tx.open_table(ALIAS_REVISIONS).map_err(|e| err(e.into()))?;
                history_in(&table, &path, alias)
            })?
            .unwrap_or_default())
    }

    fn commit_alias(&self, alias: &str, decide: Decide<'_>) -> Result<(AliasRevision, AuditEvent)> {
        let path = self.path.clone();
        self.write(|tx| {
            let err = db_err(&path);
            let mut table = tx.open_table(ALIAS_REVISIONS).map_err(|e| err(e.into()))?;
            let history = history_in(&table, &path, alias)?;
            let reports = || {
                let reports = tx.open_table(EVAL_REPORTS).map_err(|e| err(e.into()))?;
                all_reports(&reports, &path)
            };
            let (revision, draft) = decide(&history, &reports)?;
            table
                .insert((alias, revision.revision), encode(&revision)?.as_slice())
                .map_err(|e| err(e.into()))?;
            Ok((revision, draft))
        })
    }

    fn put_pin(&self, pin: &Pin, draft: AuditDraft) -> Result<AuditEvent> {
        let path = self.path.clone();
        let ((), event) = self.write(|tx| {
            let err = db_err(&path);
            let mut pins = tx.open_table(PINS).map_err(|e| err(e.into()))?;
            pins.insert(
                (pin.index_id.as_str(), pin.holder.as_str()),
                encode(pin)?.as_slice(),
            )
            .map_err(|e| err(e.into()))?;
            Ok(((), draft))
        })?;
        Ok(event)
    }

    fn remove_pin(
        &self,
        index: &IndexId,
        holder: &str,
        draft: &mut dyn FnMut(&Pin) -> AuditDraft,
    ) -> Result<(Pin, AuditEvent)> {
        let path = self.path.clone();
        self.write(|tx| {
            let err = db_err(&path);
            let mut pins = tx.open_table(PINS).map_err(|e| err(e.into()))?;
            let removed = pins
                .remove((index.as_str(), holder))
                .map_err(|e| err(e.into()))?
                .map(|v| decode::<Pin>(&path, v.value()))
                .transpose()?;
            let pin = removed.ok_or_else(|| StoreError::NotFound {
                kind: "pin",
                id: format!("{index} held by {holder}"),
            })?;
            let draft = draft(&pin);
            Ok((pin, draft))
        })
    }

    fn pins(&self) -> Result<Vec<Pin>> {
        let path = self.path.clone();
        Ok(self
            .read(|tx| {
                let err = db_err(&path);
                let pins = tx.open_table(PINS).map_err(|e| err(e.into()))?;
                let mut out = Vec::new();
                for entry in pins.iter().map_err(|e| err(e.into()))? {
                    let (_, v) = entry.map_err(|e| err(e.into()))?;
                    out.push(decode(&path, v.value())?);
                }
                Ok(out)
            })?
            .unwrap_or_default())
    }

    fn put_manifest(&self, manifest: &Manifest, draft: AuditDraft) -> Result<Published> {
        let path = self.path.clone();
        self.write_raw(|tx| {
            let err = db_err(&path);
            let mut manifests = tx.open_table(MANIFESTS).map_err(|e| err(e.into()))?;
            let key = manifest.index_id.as_str();
            if let Some(stored) = manifests.get(key).map_err(|e| err(e.into()))? {
                let stored: Manifest = decode(&path, stored.value())?;
                return Ok(Published::Exists {
                    content_digest: stored.content_digest,
                });
            }
            manifests
                .insert(key, encode(manifest)?.as_slice())
                .map_err(|e| err(e.into()))?;
            drop(manifests);
            Ok(Published::Recorded(Box::new(audit::append(
                tx, &path, draft,
            )?)))
        })
    }

    fn manifest(&self, id: &IndexId) -> Result<Option<Manifest>> {
        let path = self.path.clone();
        Ok(self
            .read_table(MANIFESTS, |table| {
                let stored = table
                    .get(id.as_str())
                    .map_err(|e| db_err(&path)(e.into()))?;
                stored.map(|v| decode(&path, v.value())).transpose()
            })?
            .flatten())
    }

    fn mark_deleting(
        &self,
        id: &IndexId,
        at_us: u64,
        draft: AuditDraft,
    ) -> Result<Option<AuditEvent>> {
        let path = self.path.clone();
        self.write_raw(|tx| {
            let err = db_err(&path);
            let mut table = tx.open_table(DELETING).map_err(|e| err(e.into()))?;
            if table.get(id.as_str()).map_err(|e| err(e.into()))?.is_some() {
                return Ok(None);
            }
            table
                .insert(id.as_str(), at_us)
                .map_err(|e| err(e.into()))?;
            drop(table);
            Ok(Some(audit::append(tx, &path, draft)?))
        })
    }

    fn deleting(&self) -> Result<BTreeMap<IndexId, u64>> {
        let path = self.path.clone();
        Ok(self
            .read(|tx| {
                let err = db_err(&path);
                let table = match tx.open_table(DELETING) {
                    Ok(table) => table,
                    Err(redb::TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
                    Err(e) => return Err(err(e.into())),
                };
                let mut out = BTreeMap::new();
                for entry in table.iter().map_err(|e| err(e.into()))? {
                    let (k, v) = entry.map_err(|e| err(e.into()))?;
                    if let Ok(id) = k.value().parse::<IndexId>() {
                        out.insert(id, v.value());
                    }
                }
                Ok(out)
            })?
            .unwrap_or_default())
    }

    fn unmark_deleting(&self, id: &IndexId, forget: bool, draft: AuditDraft) -> Result<AuditEvent> {
        let path = self.path.clone();
        let ((), event) = self.write(|tx| {
            let err = db_err(&path);
            let mut table = tx.open_table(DELETING).map_err(|e| err(e.into()))?;
            if table
                .remove(id.as_str())
                .map_err(|e| err(e.into()))?
                .is_none()
            {
                return Err(StoreError::NotFound {
                    kind: "deletion mark",
                    id: id.to_string(),
                });
            }
            if forget {
                let mut manifests = tx.open_table(MANIFESTS).map_err(|e| err(e.into()))?;
                manifests.remove(id.as_str()).map_err(|e| err(e.into()))?;
            }
            Ok(((), draft))
        })?;
        Ok(event)
    }

    fn put_eval_report(&self, record: &ReportRecord, draft: AuditDraft) -> Result<AuditEvent> {
        let path = self.path.clone();
        let ((), event) = self.write(|tx| {
            let err = db_err(&path);
            let mut table = tx.open_table(EVAL_REPORTS).map_err(|e| err(e.into()))?;
            table
                .insert(record.report_id.as_str(), encode(record)?.as_slice())
                .map_err(|e| err(e.into()))?;
            Ok(((), draft))
        })?;
        Ok(event)
    }

    fn eval_reports(&self) -> Result<Vec<ReportRecord>> {
        let path = self.path.clone();
        Ok(self
            .read(|tx| {
                let err = db_err(&path);
                let table = tx.open_table(EVAL_REPORTS).map_err(|e| err(e.into()))?;
                all_reports(&table, &path)
            })?
            .unwrap_or_default())
    }

    fn append_audit(&self, draft: AuditDraft) -> Result<AuditEvent> {
        Ok(self.write(|_| Ok(((), draft)))?.1)
    }

    fn audit_events(&self) -> Result<Vec<AuditEvent>> {
        let path = self.path.clone();
        Ok(self
            .read(|tx| audit::events(tx, &path))?
            .unwrap_or_default())
    }

    fn audit_page(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>> {
        let path = self.path.clone();
        Ok(self
            .read(|tx| audit::page(tx, &path, after, limit))?
            .unwrap_or_default())
    }

    fn verify_audit(&self) -> Result<AuditVerification> {
        let path = self.path.clone();
        Ok(self
            .read(|tx| audit::verify(tx, &path))?
            .unwrap_or(AuditVerification {
                ok: true,
                events: 0,
                head_seq: 0,
                head_hash: quire_release::audit::hex(quire_release::audit::GENESIS),
                first_bad_seq: None,
                problem: None,
            }))
    }

    fn put_samples(&self, samples: &[SampleRecord]) -> Result<()> {
        let path = self.path.clone();
        self.write_raw(|tx| {
            let err = db_err(&path);
            let mut table = tx.open_table(SAMPLES).map_err(|e| err(e.into()))?;
            for s in samples {
                let key = (s.alias.as_str(), s.time_us, s.request_id.as_str());
                table
                    .insert(key, encode(s)?.as_slice())
                    .map_err(|e| err(e.into()))?;
            }
            Ok(())
        })
    }

    fn samples(&self, query: &SampleQuery) -> Result<Vec<SampleRecord>> {
        let path = self.path.clone();
        Ok(self
            .read_table(SAMPLES, |t| samples_in(t, &path, query))?
            .unwrap_or_default())
    }

    fn put_canary_report(&self, report: &CanaryReport, draft: AuditDraft) -> Result<AuditEvent> {
        let path = self.path.clone();
        let ((), event) = self.write(|tx| {
            let err = db_err(&path);
            let mut table = tx.open_table(CANARY_REPORTS).map_err(|e| err(e.into()))?;
            let key = (
                report.alias.as_str(),
                report.created_us,
                report.report_id.as_str(),
            );
            table
                .insert(key, encode(report)?.as_slice())
                .map_err(|e| err(e.into()))?;
            Ok(((), draft))
        })?;
        Ok(event)
    }

    fn canary_reports(&self, alias: Option<&str>) -> Result<Vec<CanaryReport>> {
        let path = self.path.clone();
        let mut out: Vec<CanaryReport> = self
            .read_table(CANARY_REPORTS, |t| {
                let err = db_err(&path);
                let mut out = Vec::new();
                for entry in t.iter().map_err(|e| err(e.into()))? {
                    let (key, value) = entry.map_err(|e| err(e.into()))?;
                    if alias.is_none_or(|a| a == key.value().0) {
                        out.push(decode(&path, value.value())?);
                    }
                }
                Ok(out)
            })?
            .unwrap_or_default();
        sort_canary_reports(&mut out);
        Ok(out)
    }

    fn prune_canary_reports(&self, before_us: u64) -> Result<u64> {
        self.prune_before(CANARY_REPORTS, before_us)
    }

    fn prune_samples(&self, before_us: u64) -> Result<u64> {
        self.prune_before(SAMPLES, before_us)
    }

    fn put_feedback(&self, records: &[FeedbackRecord]) -> Result<()> {
        let path = self.path.clone();
        self.write_raw(|tx| {
            let err = db_err(&path);
            let mut table = tx.open_table(FEEDBACK).map_err(|e| err(e.into()))?;
            for r in records {
                let key = (r.alias.as_str(), r.time_us, r.request_id.as_str());
                table
                    .insert(key, encode(r)?.as_slice())
                    .map_err(|e| err(e.into()))?;
            }
            Ok(())
        })
    }

    fn feedback(&self, alias: &str, since_us: u64) -> Result<Vec<FeedbackRecord>> {
        let path = self.path.clone();
        Ok(self
            .read_table(FEEDBACK, |t| {
                let err = db_err(&path);
                let mut out = Vec::new();
                for entry in t
                    .range((alias, since_us, "")..)
                    .map_err(|e| err(e.into()))?
                {
                    let (key, value) = entry.map_err(|e| err(e.into()))?;
                    if key.value().0 != alias {
                        break;
                    }
                    out.push(decode(&path, value.value())?);
                }
                Ok(out)
            })?
            .unwrap_or_default())
    }

    fn prune_feedback(&self, before_us: u64) -> Result<u64> {
        self.prune_before(FEEDBACK, before_us)
    }
}

impl RedbRegistry {
    /// Delete the records of a table keyed `(alias, microseconds, id)` older than `before_us`:
    /// retention. How many went.
    fn prune_before(
        &self,
        table: redb::TableDefinition<'_, (&'static str, u64, &'static str), &'static [u8]>,
        before_us: u64,
    ) -> Result<u64> {
        let path = self.path.clone();
        self.write_raw(|tx| {
            let err = db_err(&path);
            let mut table = tx.open_table(table).map_err(|e| err(e.into()))?;
            let mut removed = 0u64;
            table
                .retain(|(_, time_us, _), _| {
                    let expired = time_us < before_us;
                    removed += u64::from(expired);
                    !expired
                })
                .map_err(|e| err(e.into()))?;
            Ok(removed)
        })
    }

    /// Run `f` over `table` in a read transaction; a table a registry written by an older quire
    /// lacks reads as empty (`None`).
    fn read_table<K: redb::Key + 'static, T>(
        &self,
        table: redb::TableDefinition<'_, K, &'static [u8]>,
        f: impl FnOnce(&redb::ReadOnlyTable<K, &'static [u8]>) -> Result<T>,
    ) -> Result<Option<T>> {
        let path = self.path.clone();
        Ok(self
            .read(|tx| match tx.open_table(table) {
                Ok(t) => f(&t).map(Some),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
                Err(e) => Err(db_err(&path)(e.into())),
            })?
            .flatten())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn redb_passes_the_registry_conformance_suite() {
        // Each registry lives in its own directory, removed when the suite ends.
        let dirs = Mutex::new(Vec::new());
        crate::registry::conformance::run(&|| {
            let dir = tempfile::TempDir::new().expect("temp dir");
            let registry = RedbRegistry::open(dir.path(), Access::Write).expect("open registry");
            dirs.lock().expect("dirs").push(dir);
            Box::new(registry)
        });
    }
}
