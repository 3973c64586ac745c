//! The corpus readers' harnesses: the fuzzer's bytes written where `quire import` would read
//! them (a scratch directory of the thread's own), then read as the import reads them.

use std::cell::RefCell;
use std::path::PathBuf;

use quire_core::{Document, JsonDialect};
use quire_store::StoreError;
use quire_store::import::{ACL_RULES_FILE, CorpusFormat, canonicalise, read_corpus, rule_matches};

use crate::MAX_DOCUMENT_BYTES;

thread_local! {
    /// One scratch directory per thread, reused by every input (afl runs millions).
    static SCRATCH: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

/// Where the fuzz script has a harness write its files: one fixed directory per afl instance
/// (its targets run one at a time), so the forked targets leave no directories behind.
pub const SCRATCH_ENV: &str = "QUIRE_FUZZ_SCRATCH";

fn scratch() -> PathBuf {
    if let Some(dir) = std::env::var_os(SCRATCH_ENV) {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        return dir;
    }
    SCRATCH.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                tempfile::Builder::new()
                    .prefix("quire-fuzz-")
                    .tempdir()
                    .expect("a scratch directory")
            })
            .path()
            .to_path_buf()
    })
}

/// A corpus file in quire's JSONL.
pub fn corpus_jsonl(data: &[u8]) {
    corpus_file(data, CorpusFormat::Jsonl);
}

/// A BEIR `corpus.jsonl`.
pub fn corpus_beir(data: &[u8]) {
    corpus_file(data, CorpusFormat::Beir);
}

fn corpus_file(data: &[u8], format: CorpusFormat) {
    let path = scratch().join("corpus.jsonl");
    std::fs::write(&path, data).expect("write the scratch corpus");
    let docs = read_corpus(&path, format, "corpus.jsonl", MAX_DOCUMENT_BYTES)
        .and_then(|docs| canonicalise(docs, &path));
    check(docs);
}

/// A directory corpus and its ACL rules, from one input split at NUL bytes (see [`dir_input`]).
pub fn corpus_dir(data: &[u8]) {
    let root = scratch().join("dir");
    if root.exists() {
        std::fs::remove_dir_all(&root).expect("clear the scratch corpus");
    }
    std::fs::create_dir(&root).expect("create the scratch corpus");
    let (rules, files) = dir_input(data);
    if let Some(rules) = rules {
        std::fs::write(root.join(ACL_RULES_FILE), rules).expect("write the rules");
    }
    for (name, text) in files {
        let path = root.join(&name);
        if let Some(parent) = path.parent() {
            // A name may also be taken as a directory by another: skip what cannot be laid out.
            if std::fs::create_dir_all(parent).is_err() {
                continue;
            }
        }
        // Or a file of that name cannot be made (taken as a directory, or too long a name):
        // the corpus is laid out without it.
        if path.is_dir() || std::fs::write(&path, text).is_err() {
            continue;
        }
    }
    if let Err(e) = rule_matches(&root, MAX_DOCUMENT_BYTES) {
        assert_user_error(&e);
    }
    let docs = read_corpus(&root, CorpusFormat::Dir, "dir", MAX_DOCUMENT_BYTES)
        .and_then(|docs| canonicalise(docs, &root));
    check(docs);
}

/// Split a `corpus_dir` input: segments separated by NUL bytes. The first is the
/// `quire-acl.toml` (absent when the input does not start with it, i.e. has no NUL), then
/// alternating file names and contents. A name is made safe to create under the corpus root:
/// `/`-separated components of `[A-Za-z0-9._-]`, none `.`, `..` or empty, at most 4 deep (a
/// file whose name the file system refuses, e.g. a component past 255 bytes, is left out).
#[allow(clippy::type_complexity)]
pub fn dir_input(data: &[u8]) -> (Option<&[u8]>, Vec<(PathBuf, &[u8])>) {
    let mut segments = data.split(|&b| b == 0);
    let first = segments.next().unwrap_or_default();
    let rules = data.contains(&0).then_some(first);
    let mut files = Vec::new();
    while let (Some(name), Some(text)) = (segments.next(), segments.next()) {
        if let Some(name) = safe_name(name) {
            files.push((name, text));
        }
    }
    (rules, files)
}

fn safe_name(raw: &[u8]) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    for part in raw.split(|&b| b == b'/').filter(|p| !p.is_empty()).take(4) {
        let part: String = part
            .iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                    b as char
                } else {
                    '_'
                }
            })
            .collect();
        if part == "." || part == ".." {
            return None;
        }
        path.push(part);
    }
    (!path.as_os_str().is_empty()).then_some(path)
}

/// What a corpus read may give: documents that survive their canonical form, or a corpus error.
fn check(docs: quire_store::Result<Vec<Document>>) {
    match docs {
        Ok(docs) => {
            for doc in docs {
                round_trip(&doc);
            }
        }
        Err(e) => assert_user_error(&e),
    }
}

/// A document read back from its canonical JSON (the snapshot's form) is the same document.
fn round_trip(doc: &Document) {
    let canonical = doc.canonical_json();
    let value: serde_json::Value =
        serde_json::from_slice(&canonical).expect("a document's canonical JSON is JSON");
    let back = Document::from_json(value, JsonDialect::Quire).unwrap_or_else(|e| {
        panic!(
            "an accepted document's canonical JSON is refused: {e}\n{}",
            String::from_utf8_lossy(&canonical)
        )
    });
    assert_eq!(&back, doc, "a document changes through its canonical JSON");
}

/// A corpus the user got wrong is a corpus error naming where, never an internal failure.
fn assert_user_error(e: &StoreError) {
    assert!(
        matches!(e, StoreError::Corpus { .. }),
        "a bad corpus is refused as something other than a corpus error: {e:?}"
    );
}
