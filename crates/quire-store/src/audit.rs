//! The tamper-evident audit log: every mutation appends an event whose hash chains to the
//! previous one, `hash(n) = blake3(hash(n-1) || canonical event n)`.
//!
//! Editing, deleting, inserting or reordering stored events breaks the chain at the first
//! affected sequence number, which [`verify`] names. The head (last seq and hash) is also kept
//! apart from the events, so dropping the newest events is caught too. An attacker who rewrites
//! every hash after an edit is caught only against a head recorded elsewhere: `audit verify`
//! prints the head so operators can anchor it. Events carry ids and hashes, never document text.

use std::path::Path;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::registry::{AUDIT, META, db_err};

const HEAD_KEY: &str = "audit_head";
const GENESIS: [u8; 32] = [0; 32];

/// What a mutation wants recorded; the log adds `seq` and `time`.
#[derive(Clone, Debug, Default)]
pub struct AuditDraft {
    /// Who: the caller's token name, or `local:<user>` in the CLI's local mode.
    pub actor: String,
    /// What, e.g. `alias.promote`, `index.build`, `pin`, `gc`, `auth.denied`.
    pub action: String,
    /// What it was done to: an alias, index or snapshot id.
    pub target: String,
    /// State before (ids only).
    pub before: Value,
    /// State after (ids only).
    pub after: Value,
    /// The caller's reason.
    pub reason: String,
    /// Supporting facts: digests, counts, report ids.
    pub evidence: Value,
}

/// One event of the audit log, as hashed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// 1-based position in the log.
    pub seq: u64,
    /// RFC 3339 time of the commit.
    pub time: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub target: String,
    /// State before.
    pub before: Value,
    /// State after.
    pub after: Value,
    /// Why.
    pub reason: String,
    /// Supporting facts.
    pub evidence: Value,
    /// The chain hash of this event (hex).
    #[serde(default, skip_deserializing)]
    pub hash: String,
}

/// The result of checking the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    /// Whether every event checks out.
    pub ok: bool,
    /// Events read.
    pub events: u64,
    /// The last sequence number and chain hash (anchor them elsewhere to detect rewrites).
    pub head_seq: u64,
    /// The head's hash (hex).
    pub head_hash: String,
    /// The first sequence number that does not check out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    /// What is wrong there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The canonical bytes of an event: its fields in declaration order, the chain hash left out;
/// `serde_json::Value` maps are sorted, so equal events give equal bytes.
fn canonical(event: &AuditEvent) -> Vec<u8> {
    #[derive(Serialize)]
    struct Hashed<'a> {
        seq: u64,
        time: &'a str,
        actor: &'a str,
        action: &'a str,
        target: &'a str,
        before: &'a Value,
        after: &'a Value,
        reason: &'a str,
        evidence: &'a Value,
    }
    serde_json::to_vec(&Hashed {
        seq: event.seq,
        time: &event.time,
        actor: &event.actor,
        action: &event.action,
        target: &event.target,
        before: &event.before,
        after: &event.after,
        reason: &event.reason,
        evidence: &event.evidence,
    })
    .unwrap_or_default()
}

fn chain(prev: &[u8; 32], bytes: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("quire 2026 audit event v1");
    h.update(prev);
    h.update(bytes);
    *h.finalize().as_bytes()
}

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
    let mut event = AuditEvent {
        seq: last_seq + 1,
        time: jiff::Timestamp::now().to_string(),
        actor: draft.actor,
        action: draft.action,
        target: draft.target,
        before: draft.before,
        after: draft.after,
        reason: draft.reason,
        evidence: draft.evidence,
        hash: String::new(),
    };
    let bytes = canonical(&event);
    let hash = chain(&last_hash, &bytes);
    let mut record = hash.to_vec();
    record.extend_from_slice(&bytes);
    let mut audit = tx.open_table(AUDIT).map_err(|e| err(e.into()))?;
    audit
        .insert(event.seq, record.as_slice())
        .map_err(|e| err(e.into()))?;
    let mut head = event.seq.to_le_bytes().to_vec();
    head.extend_from_slice(&hash);
    meta.insert(HEAD_KEY, head.as_slice())
        .map_err(|e| err(e.into()))?;
    event.hash = hex(&hash);
    Ok(event)
}

fn hex(bytes: &[u8]) -> String {
    blake3::Hash::from_bytes(bytes.try_into().unwrap_or([0; 32]))
        .to_hex()
        .to_string()
}

/// Every stored event in sequence order, with its stored hash. Events that do not decode are
/// an error naming their seq.
pub(crate) fn events(tx: &ReadTransaction, path: &Path) -> Result<Vec<AuditEvent>> {
    let err = db_err(path);
    let table = tx.open_table(AUDIT).map_err(|e| err(e.into()))?;
    let mut out = Vec::new();
    for entry in table.iter().map_err(|e| err(e.into()))? {
        let (seq, record) = entry.map_err(|e| err(e.into()))?;
        let record = record.value();
        let mut event: AuditEvent = (record.len() > 32)
            .then(|| serde_json::from_slice(&record[32..]).ok())
            .flatten()
            .ok_or_else(|| StoreError::Registry {
                path: path.to_path_buf(),
                reason: format!("audit event {} does not decode", seq.value()),
            })?;
        event.hash = hex(&record[..32]);
        out.push(event);
    }
    Ok(out)
}

/// Check the whole chain: seq numbers contiguous from 1, each event's hash recomputed from the
/// previous hash and its bytes, and the head matching the last event.
pub(crate) fn verify(tx: &ReadTransaction, path: &Path) -> Result<AuditVerification> {
    let err = db_err(path);
    let table = tx.open_table(AUDIT).map_err(|e| err(e.into()))?;
    let meta = tx.open_table(META).map_err(|e| err(e.into()))?;
    let (head_seq, head_hash) = read_head(&meta, path)?;
    let mut report = AuditVerification {
        ok: true,
        events: 0,
        head_seq,
        head_hash: hex(&head_hash),
        first_bad_seq: None,
        problem: None,
    };
    let fail = |report: &mut AuditVerification, seq: u64, problem: String| {
        if report.ok {
            report.ok = false;
            report.first_bad_seq = Some(seq);
            report.problem = Some(problem);
        }
    };
    let mut prev = GENESIS;
    let mut expected = 1u64;
    for entry in table.iter().map_err(|e| err(e.into()))? {
        let (key, record) = entry.map_err(|e| err(e.into()))?;
        let (key, record) = (key.value(), record.value());
        report.events += 1;
        if key != expected {
            fail(
                &mut report,
                expected.min(key),
                format!("expected event {expected}, found {key}: events were deleted or inserted"),
            );
            break;
        }
        if record.len() <= 32 {
            fail(&mut report, key, "record is truncated".into());
            break;
        }
        let (stored, bytes) = record.split_at(32);
        let decoded: Option<AuditEvent> = serde_json::from_slice(bytes).ok();
        match decoded {
            Some(e) if e.seq == key => {}
            Some(e) => {
                fail(
                    &mut report,
                    key,
                    format!(
                        "stored at {key} but says seq {}: events were reordered",
                        e.seq
                    ),
                );
                break;
            }
            None => {
                fail(&mut report, key, "event does not decode".into());
                break;
            }
        }
        let hash = chain(&prev, bytes);
        if hash.as_slice() != stored {
            fail(
                &mut report,
                key,
                "hash does not match the event and its predecessor: the event was edited".into(),
            );
            break;
        }
        prev = hash;
        expected += 1;
    }
    if report.ok && (expected - 1 != head_seq || prev != head_hash) {
        fail(
            &mut report,
            expected.min(head_seq),
            format!(
                "the log ends at event {} but its head records event {head_seq}: events were removed or the head rewritten",
                expected - 1
            ),
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
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
