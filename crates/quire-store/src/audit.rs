//! The audit log in the registry: every mutation appends an event whose hash chains to the
//! previous one, in the same redb transaction as the mutation. The event's canonical form, the
//! chain hash and verification are [`quire_release::audit`]'s; this module stores records
//! (`seq -> hash || canonical event`) and the head (`meta.audit_head`: seq as 8 LE bytes, then
//! the hash) and reads them back.

use std::path::Path;

pub use quire_release::audit::{AuditDraft, AuditEvent, AuditVerification};
use quire_release::audit::{GENESIS, decode_record, seal, verify_chain};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use crate::error::{Result, StoreError};
use crate::tables::{AUDIT, META, db_err};

const HEAD_KEY: &str = "audit_head";

fn read_head(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    path: &Path,
) -> Result<(u64, [u8; 32])> {
    let err = db_err(path);
    let Some(v) = meta.get(HEAD_KEY).map_err(|e| err(e.into()))? else {
        return Ok((0, GENESIS));
    };
    let v = v.value();
    if v.len() != 40 {
        return Err(StoreError::Registry {
            path: path.to_path_buf(),
            reason: "audit head record is malformed".into(),
        });
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&v[..8]);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&v[8..]);
    Ok((u64::from_le_bytes(seq), hash))
}

/// Append `draft` as the next event inside `tx`.
pub(crate) fn append(tx: &WriteTransaction, path: &Path, draft: AuditDraft) -> Result<AuditEvent> {
    let err = db_err(path);
    let mut meta = tx.open_table(META).map_err(|e| err(e.into()))?;
    let (last_seq, last_hash) = read_head(&meta, path)?;
    let time = jiff::Timestamp::now().to_string();
    let (event, hash, record) = seal(last_seq, &last_hash, time, draft)?;
    let mut audit = tx.open_table(AUDIT).map_err(|e| err(e.into()))?;
    audit
        .insert(event.seq, record.as_slice())
        .map_err(|e| err(e.into()))?;
    let mut head = event.seq.to_le_bytes().to_vec();
    head.extend_from_slice(&hash);
    meta.insert(HEAD_KEY, head.as_slice())
        .map_err(|e| err(e.into()))?;
    Ok(event)
}

/// Every stored event in sequence order, with its stored hash. Events that do not decode are
/// an error naming their seq.
pub(crate) fn events(tx: &ReadTransaction, path: &Path) -> Result<Vec<AuditEvent>> {
    page(tx, path, 0, usize::MAX)
}

/// At most `limit` stored events with seq above `after`, in sequence order.
pub(crate) fn page(
    tx: &ReadTransaction,
    path: &Path,
    after: u64,
    limit: usize,
) -> Result<Vec<AuditEvent>> {
    let err = db_err(path);
    let table = tx.open_table(AUDIT).map_err(|e| err(e.into()))?;
    let mut out = Vec::new();
    let from = after.saturating_add(1);
    for entry in table.range(from..).map_err(|e| err(e.into()))?.take(limit) {
        let (seq, record) = entry.map_err(|e| err(e.into()))?;
        let event = decode_record(record.value()).ok_or_else(|| StoreError::Registry {
            path: path.to_path_buf(),
            reason: format!("audit event {} does not decode", seq.value()),
        })?;
        out.push(event);
    }
    Ok(out)
}

/// Check the whole chain ([`verify_chain`]) over the stored records and head.
pub(crate) fn verify(tx: &ReadTransaction, path: &Path) -> Result<AuditVerification> {
    let err = db_err(path);
    let table = tx.open_table(AUDIT).map_err(|e| err(e.into()))?;
    let meta = tx.open_table(META).map_err(|e| err(e.into()))?;
    let head = read_head(&meta, path)?;
    let mut records = Vec::new();
    for entry in table.iter().map_err(|e| err(e.into()))? {
        let (key, record) = entry.map_err(|e| err(e.into()))?;
        records.push((key.value(), record.value().to_vec()));
    }
    Ok(verify_chain(
        records
            .iter()
            .map(|(seq, record)| (*seq, record.as_slice())),
        head,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redb_registry::RedbRegistry as Registry;
    use crate::store::Access;

    fn log(n: u64) -> (tempfile::TempDir, Registry) {
        let dir = tempfile::TempDir::new().unwrap();
        let registry = Registry::open(dir.path(), Access::Write).unwrap();
        for i in 0..n {
            registry
                .write(|_| {
                    Ok((
                        (),
                        AuditDraft {
                            actor: "alice".into(),
                            action: "alias.set".into(),
                            target: format!("a{i}"),
                            reason: "because".into(),
                            ..AuditDraft::default()
                        },
                    ))
                })
                .unwrap();
        }
        (dir, registry)
    }

    fn check(registry: &Registry) -> AuditVerification {
        registry
            .read(|tx| verify(tx, registry.path()))
            .unwrap()
            .unwrap()
    }

    fn raw(registry: &Registry, seq: u64) -> Vec<u8> {
        registry
            .read(|tx| {
                let t = tx.open_table(AUDIT).unwrap();
                Ok(t.get(seq).unwrap().unwrap().value().to_vec())
            })
            .unwrap()
            .unwrap()
    }

    fn tamper(registry: &Registry, f: impl FnOnce(&mut redb::Table<'_, u64, &[u8]>)) {
        registry
            .write_raw(|tx| {
                f(&mut tx.open_table(AUDIT).unwrap());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn an_untouched_log_verifies_and_events_read_back() {
        let (_d, registry) = log(5);
        let report = check(&registry);
        assert!(report.ok, "{report:?}");
        assert_eq!((report.events, report.head_seq), (5, 5));
        let events = registry
            .read(|tx| events(tx, registry.path()))
            .unwrap()
            .unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(events[4].hash, report.head_hash);
    }

    #[test]
    fn an_edited_event_is_caught_at_its_seq() {
        let (_d, registry) = log(5);
        let mut record = raw(&registry, 3);
        let text = String::from_utf8(record[32..].to_vec()).unwrap();
        let edited = text.replace("alice", "mallory");
        record.truncate(32);
        record.extend_from_slice(edited.as_bytes());
        tamper(&registry, |t| {
            t.insert(3, record.as_slice()).unwrap();
        });
        let report = check(&registry);
        assert_eq!(report.first_bad_seq, Some(3), "{report:?}");
        assert!(report.problem.unwrap().contains("edited"));
    }

    #[test]
    fn deleted_inserted_and_swapped_events_are_caught() {
        let (_d, registry) = log(5);
        tamper(&registry, |t| {
            t.remove(3).unwrap();
        });
        assert_eq!(check(&registry).first_bad_seq, Some(3));

        let (_d, registry) = log(5);
        let (two, four) = (raw(&registry, 2), raw(&registry, 4));
        tamper(&registry, |t| {
            t.insert(2, four.as_slice()).unwrap();
            t.insert(4, two.as_slice()).unwrap();
        });
        let report = check(&registry);
        assert_eq!(report.first_bad_seq, Some(2), "{report:?}");
        assert!(report.problem.unwrap().contains("reordered"));

        let (_d, registry) = log(5);
        tamper(&registry, |t| {
            t.remove(5).unwrap();
        });
        let report = check(&registry);
        assert!(
            !report.ok,
            "dropping the newest event is caught by the head"
        );

        let (_d, registry) = log(3);
        let extra = raw(&registry, 3);
        tamper(&registry, |t| {
            t.insert(4, extra.as_slice()).unwrap();
        });
        assert_eq!(check(&registry).first_bad_seq, Some(4));
    }
}
