//! The registry: a redb database in the data dir (`registry.redb`) holding alias revisions,
//! pins, the audit log, manifests and evaluation reports.
//!
//! Every mutation is one redb write transaction, committed with immediate durability, that
//! also appends its audit event: a change and its evidence land together or not at all, and a
//! killed process leaves the last committed state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quire_release::AliasRevision;

use redb::{
    Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction,
};

use crate::access::Access;
use crate::audit::{self, AuditDraft, AuditEvent};
use crate::error::{Result, StoreError};
pub(crate) use crate::tables::{
    ALIAS_REVISIONS, AUDIT, EVAL_REPORTS, MANIFESTS, META, PINS, db_err, decode, encode,
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
pub(crate) struct Registry {
    path: PathBuf,
    db: Db,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
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

impl Registry {
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
            Ok(schema.as_deref() == Some(SCHEMA_VERSION))
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

    /// Every alias revision, grouped per alias, oldest first (empty when there is no registry).
    pub(crate) fn alias_revisions(&self) -> Result<BTreeMap<String, Vec<AliasRevision>>> {
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
}
