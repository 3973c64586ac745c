//! Reading corpora: quire JSONL, BEIR `corpus.jsonl`, and directories of Markdown and text.
//!
//! Readers stream their input (one line or one file at a time) into validated
//! [`Document`]s; [`canonicalise`] then sorts them by id and refuses duplicates, naming both
//! places a duplicate id came from. No reader holds more than one document's bytes at a time
//! beyond the documents it returns, and none accepts a document (a JSONL or BEIR line, a
//! directory's file, an ACL rules file) longer than `max_document_bytes`: `/dev/zero` is
//! refused at line 1 after that many bytes, not read until memory runs out.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use quire_core::{Document, JsonDialect};

use crate::acl_rules::AclRules;
use crate::error::{Result, StoreError};

/// I/O errors reading a corpus are the caller's to fix (a missing file, a dangling link, a
/// directory given as a file): they are refused as corpus errors naming the path, never
/// reported as internal failures.
trait InputContext<T> {
    fn input(self, path: &Path) -> Result<T>;
}

impl<T> InputContext<T> for std::io::Result<T> {
    fn input(self, path: &Path) -> Result<T> {
        self.map_err(|e| corpus_err(path.display().to_string(), e.to_string()))
    }
}

pub use quire_core::outcome::CorpusFormat;

/// The largest document a reader accepts unless told otherwise: 16 MiB.
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 16 << 20;

/// Read the next line of `reader` (with its newline, if any) into `buf`, which is cleared
/// first. A line whose content exceeds `max` bytes is refused as `origin(line_no)` after
/// reading at most `max + 1` of its bytes. Returns `false` at the end of the input.
pub fn read_line_bounded(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: u64,
    path: &Path,
    origin: impl FnOnce() -> String,
) -> Result<bool> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(max.saturating_add(1))
        .read_until(b'\n', buf)
        .input(path)?;
    if n == 0 {
        return Ok(false);
    }
    if !buf.ends_with(b"\n") && buf.len() as u64 > max {
        return Err(too_long(origin(), "line", max));
    }
    Ok(true)
}

/// The error for a line or file past the document size limit.
pub(crate) fn too_long(origin: String, what: &str, max: u64) -> StoreError {
    corpus_err(
        origin,
        format!("{what} is longer than {max} bytes (the largest document accepted)"),
    )
}

/// Read a whole file of at most `max` bytes (a directory's document, an ACL rules file);
/// a longer one is refused after reading at most `max + 1` bytes.
fn read_file_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    let file = File::open(path).input(path)?;
    let len = file.metadata().input(path)?.len();
    if len > max {
        return Err(too_long(path.display().to_string(), "file", max));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .input(path)?;
    if bytes.len() as u64 > max {
        return Err(too_long(path.display().to_string(), "file", max));
    }
    Ok(bytes)
}

/// Guess the format of a corpus at `path`: a directory is `dir`; a file whose first record has
/// `_id` is `beir`; any other file is `jsonl`. Errors name the file as `label`; no line longer
/// than `max_document_bytes` is read.
pub fn detect_format(path: &Path, label: &str, max_document_bytes: u64) -> Result<CorpusFormat> {
    let meta = std::fs::metadata(path).input(path)?;
    if meta.is_dir() {
        return Ok(CorpusFormat::Dir);
    }
    let mut reader = BufReader::new(File::open(path).input(path)?);
    let mut line = Vec::new();
    for line_no in 1..=100 {
        let origin = || format!("{label}:{line_no}");
        if !read_line_bounded(&mut reader, &mut line, max_document_bytes, path, origin)? {
            break;
        }
        if let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice(&line) {
            return Ok(if obj.contains_key("_id") {
                CorpusFormat::Beir
            } else {
                CorpusFormat::Jsonl
            });
        }
    }
    Ok(CorpusFormat::Jsonl)
}

/// A document and where it came from (`file:line` or a path), for error messages.
pub struct Sourced {
    /// The validated document.
    pub doc: Document,
    /// Where it was read.
    pub origin: String,
}

/// Read every document of the corpus at `path`, refusing any document longer than
/// `max_document_bytes`. Errors in JSONL and BEIR files name the file as `label` (an uploaded
/// file's own name rather than where the server spooled it).
pub fn read_corpus(
    path: &Path,
    format: CorpusFormat,
    label: &str,
    max_document_bytes: u64,
) -> Result<Vec<Sourced>> {
    match format {
        CorpusFormat::Jsonl => read_jsonl(path, label, JsonDialect::Quire, max_document_bytes),
        CorpusFormat::Beir => read_jsonl(path, label, JsonDialect::Beir, max_document_bytes),
        CorpusFormat::Dir => read_dir(path, max_document_bytes),
    }
}

fn corpus_err(origin: impl Into<String>, reason: impl Into<String>) -> StoreError {
    StoreError::Corpus {
        origin: origin.into(),
        reason: reason.into(),
    }
}

fn read_jsonl(path: &Path, label: &str, dialect: JsonDialect, max: u64) -> Result<Vec<Sourced>> {
    let file = File::open(path).input(path)?;
    if file.metadata().input(path)?.is_dir() {
        return Err(corpus_err(label, "is a directory; use --format dir"));
    }
    let mut reader = BufReader::new(file);
    let mut docs = Vec::new();
    let mut buf = Vec::new();
    for line_no in 1.. {
        let origin = format!("{label}:{line_no}");
        if !read_line_bounded(&mut reader, &mut buf, max, path, || origin.clone())? {
            break;
        }
        let line = std::str::from_utf8(&buf).map_err(|e| {
            corpus_err(
                &origin,
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            )
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| corpus_err(&origin, format!("malformed JSON: {e}")))?;
        let doc =
            Document::from_json(value, dialect).map_err(|reason| corpus_err(&origin, reason))?;
        docs.push(Sourced { doc, origin });
    }
    Ok(docs)
}

pub use crate::acl_rules::{ACL_RULES_FILE, RuleMatches};

/// The ACL rules of the directory corpus at `root` (none without a rules file).
fn load_rules(root: &Path, max: u64) -> Result<AclRules> {
    let path = root.join(ACL_RULES_FILE);
    if !path.exists() {
        return Ok(AclRules::none());
    }
    let origin = path.display().to_string();
    let text = String::from_utf8(read_file_bounded(&path, max)?).map_err(|e| {
        corpus_err(
            &origin,
            format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        )
    })?;
    AclRules::parse(&text, &origin)
}

/// How many documents of the directory corpus at `root` each rule of its `quire-acl.toml`
/// matches (`None` without one), so that a rule matching nothing can be reported.
pub fn rule_matches(root: &Path, max: u64) -> Result<Option<Vec<RuleMatches>>> {
    if !root.join(ACL_RULES_FILE).exists() {
        return Ok(None);
    }
    let rules = load_rules(root, max)?;
    let files = document_files(root)?;
    Ok(Some(rules.matches(files.iter().map(|(_, id)| id.as_str()))))
}

fn read_dir(root: &Path, max: u64) -> Result<Vec<Sourced>> {
    let rules = load_rules(root, max)?;
    document_files(root)?
        .into_iter()
        .map(|(path, rel)| {
            Ok(Sourced {
                doc: read_file_document(&path, &rel, &rules, max)?,
                origin: path.display().to_string(),
            })
        })
        .collect()
}

/// The document files of the directory corpus at `root` (`.md` and `.txt`, hidden entries
/// skipped, symlinks followed only within the root), with their ids, in name order.
fn document_files(root: &Path) -> Result<Vec<(PathBuf, String)>> {
    if !std::fs::metadata(root).input(root)?.is_dir() {
        return Err(corpus_err(root.display().to_string(), "is not a directory"));
    }
    let canonical_root = root.canonicalize().input(root)?;
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry.map_err(|e| {
            let path = e
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| root.to_path_buf());
            corpus_err(path.display().to_string(), format!("cannot read: {e}"))
        })?;
        let path = entry.path();
        if entry.path_is_symlink() {
            let target = path.canonicalize().input(path)?;
            if !target.starts_with(&canonical_root) {
                return Err(corpus_err(
                    path.display().to_string(),
                    format!(
                        "symlink points outside the corpus root, to {}",
                        target.display()
                    ),
                ));
            }
        }
        if !entry.file_type().is_file() || !is_document(path) {
            continue;
        }
        files.push((path.to_path_buf(), relative_id(root, path)?));
    }
    Ok(files)
}

fn is_document(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("md" | "txt")
    )
}

fn relative_id(root: &Path, path: &Path) -> Result<String> {
    let rel: PathBuf = path
        .strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    parts
        .map(|p| p.join("/"))
        .ok_or_else(|| corpus_err(path.display().to_string(), "path is not valid UTF-8"))
}

fn read_file_document(path: &Path, id: &str, rules: &AclRules, max: u64) -> Result<Document> {
    let bytes = read_file_bounded(path, max)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        corpus_err(
            path.display().to_string(),
            format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
        )
    })?;
    let markdown = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("md"));
    let title = markdown
        .then(|| {
            text.lines()
                .find_map(|l| l.strip_prefix("# ").map(|t| t.trim().to_owned()))
        })
        .flatten()
        .filter(|t| !t.is_empty());
    Ok(Document {
        id: id.to_owned(),
        title,
        metadata: Default::default(),
        acl: rules.acl_for(id),
        updated_at: None,
        text,
    })
}

/// Sort documents by id and refuse an empty corpus or a duplicate id (naming both origins).
pub fn canonicalise(mut docs: Vec<Sourced>, source: &Path) -> Result<Vec<Document>> {
    if docs.is_empty() {
        return Err(corpus_err(
            source.display().to_string(),
            "the corpus has no documents",
        ));
    }
    // Stable sort: of two duplicates, the one read first comes first.
    docs.sort_by(|a, b| a.doc.id.cmp(&b.doc.id));
    if let Some(w) = docs.windows(2).find(|w| w[0].doc.id == w[1].doc.id) {
        return Err(corpus_err(
            &w[1].origin,
            format!(
                "duplicate id {:?} (first seen at {})",
                w[1].doc.id, w[0].origin
            ),
        ));
    }
    Ok(docs.into_iter().map(|s| s.doc).collect())
}
