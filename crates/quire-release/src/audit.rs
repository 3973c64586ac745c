//! The tamper-evident audit log's pure part: events in their canonical form, the chain
//! `hash(n) = blake3(hash(n-1) || canonical event n)`, and verification of stored records.
//!
//! Editing, deleting, inserting or reordering stored events breaks the chain at the first
//! affected sequence number, which [`verify_chain`] names. The head (last seq and hash) is kept
//! apart from the events, so dropping the newest events is caught too. An attacker who rewrites
//! every hash after an edit is caught only against a head recorded elsewhere: `audit verify`
//! prints the head so operators can anchor it. Events carry ids and hashes, never document text.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ReleaseError, Result};

/// The hash before the first event.
pub const GENESIS: [u8; 32] = [0; 32];

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
pub fn canonical(event: &AuditEvent) -> Result<Vec<u8>> {
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
    .map_err(|source| ReleaseError::Encode {
        what: "audit event",
        source,
    })
}

/// The chain hash of an event: blake3 in key-derivation mode over the previous hash and the
/// event's canonical bytes.
pub fn chain(prev: &[u8; 32], bytes: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("quire 2026 audit event v1");
    h.update(prev);
    h.update(bytes);
    *h.finalize().as_bytes()
}

/// A hash as lowercase hex.
pub fn hex(hash: [u8; 32]) -> String {
    blake3::Hash::from_bytes(hash).to_hex().to_string()
}

/// Make `draft` the event after (`last_seq`, `last_hash`), committed at `time`: the event (with
/// its hash), its chain hash and the record to store (the hash, then the canonical bytes).
pub fn seal(
    last_seq: u64,
    last_hash: &[u8; 32],
    time: String,
    draft: AuditDraft,
) -> Result<(AuditEvent, [u8; 32], Vec<u8>)> {
    let mut event = AuditEvent {
        seq: last_seq + 1,
        time,
        actor: draft.actor,
        action: draft.action,
        target: draft.target,
        before: draft.before,
        after: draft.after,
        reason: draft.reason,
        evidence: draft.evidence,
        hash: String::new(),
    };
    let bytes = canonical(&event)?;
    let hash = chain(last_hash, &bytes);
    let mut record = hash.to_vec();
    record.extend_from_slice(&bytes);
    event.hash = hex(hash);
    Ok((event, hash, record))
}

/// Decode a stored record (32-byte hash, then the canonical event) into its event, with the
/// stored hash; `None` when it does not decode.
pub fn decode_record(record: &[u8]) -> Option<AuditEvent> {
    if record.len() <= 32 {
        return None;
    }
    let (stored, bytes) = record.split_at(32);
    let mut event: AuditEvent = serde_json::from_slice(bytes).ok()?;
    event.hash = hex(stored.try_into().ok()?);
    Some(event)
}

/// Check a whole chain: `records` are the stored (seq, record) pairs in key order, `head` the
/// stored head (seq and hash). Seq numbers must be contiguous from 1, each event's hash must
/// follow from the previous hash and its bytes, and the head must match the last event.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = (u64, &'a [u8])>,
    (head_seq, head_hash): (u64, [u8; 32]),
) -> AuditVerification {
    let mut report = AuditVerification {
        ok: true,
        events: 0,
        head_seq,
        head_hash: hex(head_hash),
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
    for (key, record) in records {
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
    report
}
