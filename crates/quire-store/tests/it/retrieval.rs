//! Retrieval over the handbook: permissions hold whatever the query, and two builds of the same
//! inputs answer identically.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use quire_core::{BuildSpec, IndexId, Reader};
use quire_index::{Mode, NoProgress, Query, Response};
use quire_store::{Access, RetrievalService, Store};
use tempfile::TempDir;

fn handbook() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpora/handbook")
}

fn build(dir: &Path) -> (Store, IndexId) {
    let store = Store::open(dir, Access::Write).unwrap();
    let snap = store.import(&handbook(), None).unwrap();
    let built = store
        .build(&snap.snapshot_id, &BuildSpec::default(), &NoProgress)
        .unwrap();
    (store, built.manifest.index_id)
}

fn query(text: &str, reader: &Reader, mode: Mode, k: usize) -> Query {
    Query {
        text: text.into(),
        reader: reader.clone(),
        k,
        mode,
        fusion: None,
        candidates: None,
    }
}

const MODES: [Mode; 3] = [Mode::Hybrid, Mode::Bm25, Mode::Vector];

#[test]
fn hr_sees_hr_policies_and_nobody_else_does_even_quoting_them() {
    let tmp = TempDir::new().unwrap();
    let (store, id) = build(tmp.path());
    let index = store.open_index(&id).unwrap();
    let hr = Reader::new(Some("harriet"), ["all-staff", "hr"]).unwrap();
    let outsider = Reader::new(Some("mallory"), ["all-staff", "eng", "finance"]).unwrap();

    // Every chunk of a document the outsider may not read, quoted verbatim, in every mode.
    let hidden: Vec<usize> = (0..index.docs().len())
        .filter(|&d| !index.acls()[d].admits(&outsider))
        .collect();
    assert!(
        hidden.len() >= 15,
        "the handbook should hide many documents from an engineer"
    );
    let mut quoted = 0;
    for chunk in index
        .chunks()
        .iter()
        .filter(|c| hidden.contains(&(c.doc as usize)))
    {
        let doc = &index.docs()[chunk.doc as usize];
        let text = std::fs::read_to_string(handbook().join(&doc.doc_id)).unwrap();
        let quote = &text[chunk.start as usize..chunk.end as usize];
        for mode in MODES {
            let r = store
                .retrieve(id.as_str(), &query(quote, &outsider, mode, 20))
                .unwrap();
            for hit in &r.hits {
                let d = index
                    .docs()
                    .iter()
                    .position(|x| x.doc_id == hit.doc_id)
                    .unwrap();
                assert!(
                    !hidden.contains(&d),
                    "{} leaked to the outsider ({mode:?}) quoting {}",
                    hit.chunk_id,
                    chunk.chunk_id
                );
            }
        }
        quoted += 1;
    }
    assert!(quoted > 50);

    // Secrets named in the corpus README never reach the outsider, and do reach their readers.
    for (secret, owner, groups) in [
        (
            "$184 million",
            "execs/project-heron-acquisition-evaluation.md",
            vec!["execs"],
        ),
        (
            "$152,000",
            "hr/compensation-bands-and-salary-review.md",
            vec!["hr"],
        ),
        (
            "base salary of $172,500",
            "people/alice-offer-letter.md",
            vec!["hr"],
        ),
    ] {
        for mode in MODES {
            let r = store
                .retrieve(id.as_str(), &query(secret, &outsider, mode, 50))
                .unwrap();
            assert!(
                r.hits
                    .iter()
                    .all(|h| !h.text.contains(secret) && h.doc_id != owner),
                "{secret} leaked in {mode:?}"
            );
        }
        let insider = Reader::new(None, groups).unwrap();
        let r = store
            .retrieve(id.as_str(), &query(secret, &insider, Mode::Bm25, 5))
            .unwrap();
        assert!(
            r.hits.iter().any(|h| h.doc_id == owner),
            "{owner} should be found by its readers"
        );
    }

    // HR sees HR-only policy chunks for an HR question; the outsider gets none of them.
    let q = "salary bands and the annual merit pool";
    let for_hr = store
        .retrieve(id.as_str(), &query(q, &hr, Mode::Hybrid, 5))
        .unwrap();
    assert!(
        for_hr
            .hits
            .iter()
            .any(|h| h.doc_id == "hr/compensation-bands-and-salary-review.md")
    );
    let for_outsider = store
        .retrieve(id.as_str(), &query(q, &outsider, Mode::Hybrid, 5))
        .unwrap();
    assert!(
        for_outsider
            .hits
            .iter()
            .all(|h| !h.doc_id.starts_with("hr/compensation"))
    );

    // A user-specific document is visible to its user only (and HR).
    let alice = Reader::new(Some("alice"), ["all-staff"]).unwrap();
    let bob = Reader::new(Some("bob"), ["all-staff"]).unwrap();
    let offer = "offer letter base salary start date";
    let r = store
        .retrieve(id.as_str(), &query(offer, &alice, Mode::Bm25, 5))
        .unwrap();
    assert!(
        r.hits
            .iter()
            .any(|h| h.doc_id == "people/alice-offer-letter.md")
    );
    let r = store
        .retrieve(id.as_str(), &query(offer, &bob, Mode::Bm25, 50))
        .unwrap();
    assert!(
        r.hits
            .iter()
            .all(|h| h.doc_id != "people/alice-offer-letter.md")
    );
}

fn stable(r: &Response) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    // Measurements of this run, not part of the answer.
    v["timings_us"] = serde_json::Value::Null;
    v["cpu_us"] = serde_json::Value::Null;
    v
}

#[test]
fn two_builds_of_the_same_inputs_answer_identically() {
    let (a, b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let (sa, ia) = build(a.path());
    let (sb, ib) = build(b.path());
    assert_eq!(ia, ib);
    let readers = [
        Reader::new(None, ["all-staff"]).unwrap(),
        Reader::new(Some("alice"), ["hr", "eng"]).unwrap(),
    ];
    for text in [
        "rollback a failed deploy",
        "parental leave weeks",
        "expense report receipts",
        "incident severity",
    ] {
        for reader in &readers {
            for mode in MODES {
                let q = query(text, reader, mode, 10);
                let (ra, rb) = (
                    sa.retrieve(ia.as_str(), &q).unwrap(),
                    sb.retrieve(ib.as_str(), &q).unwrap(),
                );
                assert!(!ra.hits.is_empty(), "{text:?} found nothing in {mode:?}");
                assert_eq!(stable(&ra), stable(&rb));
                assert!(ra.timings_us.total >= ra.timings_us.bm25);
            }
        }
    }
}

#[test]
fn targets_resolve_by_prefix_and_bad_targets_are_named() {
    let tmp = TempDir::new().unwrap();
    let (store, id) = build(tmp.path());
    let reader = Reader::new(None, ["all-staff"]).unwrap();
    let q = query("deploy", &reader, Mode::Hybrid, 3);
    let r = store.retrieve(&id.hex()[..12], &q).unwrap();
    assert_eq!(r.lineage.index_id, id);
    let short = store.retrieve(&id.hex()[..6], &q).unwrap_err().to_string();
    assert!(short.contains("too short"), "{short}");
    let missing = store
        .retrieve("idx-000000000000", &q)
        .unwrap_err()
        .to_string();
    assert!(missing.contains("no index matches"), "{missing}");
}
