//! The audit chain over records built by `seal`: an untouched chain verifies, and any edit is
//! caught at its sequence number.

use quire_release::AuditDraft;
use quire_release::audit::{GENESIS, decode_record, seal, verify_chain};

/// Stored (seq, record) pairs.
type Records = Vec<(u64, Vec<u8>)>;

fn chain(n: u64) -> (Records, (u64, [u8; 32])) {
    let mut records = Vec::new();
    let (mut seq, mut hash) = (0, GENESIS);
    for i in 0..n {
        let draft = AuditDraft {
            actor: "alice".into(),
            action: "alias.set".into(),
            target: format!("a{i}"),
            reason: "because".into(),
            ..AuditDraft::default()
        };
        let (event, next, record) = seal(seq, &hash, format!("t{i}"), draft).unwrap();
        assert_eq!(decode_record(&record).unwrap(), event);
        records.push((event.seq, record));
        (seq, hash) = (event.seq, next);
    }
    (records, (seq, hash))
}

fn verify(records: &[(u64, Vec<u8>)], head: (u64, [u8; 32])) -> quire_release::AuditVerification {
    verify_chain(records.iter().map(|(s, r)| (*s, r.as_slice())), head)
}

#[test]
fn an_untouched_chain_verifies() {
    let (records, head) = chain(4);
    let report = verify(&records, head);
    assert!(report.ok, "{report:?}");
    assert_eq!((report.events, report.head_seq), (4, 4));
}

#[test]
fn an_edit_is_caught_at_its_seq() {
    let (mut records, head) = chain(4);
    let text = String::from_utf8(records[1].1[32..].to_vec()).unwrap();
    records[1].1.truncate(32);
    records[1]
        .1
        .extend_from_slice(text.replace("alice", "mallory").as_bytes());
    let report = verify(&records, head);
    assert_eq!(report.first_bad_seq, Some(2), "{report:?}");
    assert!(report.problem.unwrap().contains("edited"));
}

#[test]
fn an_empty_chain_verifies_against_the_genesis_head() {
    let report = verify(&[], (0, GENESIS));
    assert!(report.ok);
    assert_eq!(report.events, 0);
}
