//! Reading corpora: quire JSONL, BEIR `corpus.jsonl`, and directories of Markdown and text.
//!
//! Readers stream their input (one line or one file at a time) into validated
//! [`Document`]s; [`canonicalise`] then sorts them by id and refuses duplicates, naming both
//! places a duplicate id came from.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use quire_core::{Acl, Document, JsonDialect};
use serde::Deserialize;

use crate::error::{IoContext, Result, StoreError};

pub use quire_core::outcome::CorpusFormat;

/// Guess the format of a corpus at `path`: a directory is `dir`; a file whose first record has `_id` is `beir`;
/// any other file is `jsonl`.
pub fn detect_format(path: &Path) -> Result<CorpusFormat> {
    let meta = std::fs::metadata(path).at(path)?;
    if meta.is_dir() {
        return Ok(CorpusFormat::Dir);
    }
    let reader = BufReader::new(File::open(path).at(path)?);
    for line in reader.split(b'\n').take(100) {
        let line = line.at(path)?;
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

/// Read every document of the corpus at `path`. Errors in JSONL and BEIR files name the file as
/// `label` (an uploaded file's own name rather than where the server spooled it).
pub fn read_corpus(path: &Path, format: CorpusFormat, label: &str) -> Result<Vec<Sourced>> {
    match format {
        CorpusFormat::Jsonl => read_jsonl(path, label, JsonDialect::Quire),
        CorpusFormat::Beir => read_jsonl(path, label, JsonDialect::Beir),
        CorpusFormat::Dir => read_dir(path),
    }
}

fn corpus_err(origin: impl Into<String>, reason: impl Into<String>) -> StoreError {
    StoreError::Corpus {
        origin: origin.into(),
        reason: reason.into(),
    }
}

fn read_jsonl(path: &Path, label: &str, dialect: JsonDialect) -> Result<Vec<Sourced>> {
    let file = File::open(path).at(path)?;
    if file.metadata().at(path)?.is_dir() {
        return Err(corpus_err(label, "is a directory; use --format dir"));
    }
    let mut reader = BufReader::new(file);
    let mut docs = Vec::new();
    let mut buf = Vec::new();
    for line_no in 1.. {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).at(path)? == 0 {
            break;
        }
        let origin = format!("{label}:{line_no}");
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

/// `quire-acl.toml`: glob rules mapping paths to ACLs; the last matching rule wins.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AclFile {
    version: u32,
    #[serde(default)]
    rules: Vec<AclRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AclRule {
    paths: Vec<String>,
    acl: Vec<String>,
}

/// File name of a directory corpus's ACL rules.
pub const ACL_RULES_FILE: &str = "quire-acl.toml";

struct AclRules {
    rules: Vec<(GlobSet, Acl)>,
}

impl AclRules {
    fn load(root: &Path) -> Result<Self> {
        let path = root.join(ACL_RULES_FILE);
        if !path.exists() {
            return Ok(Self { rules: Vec::new() });
        }
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(&path).at(&path)?;
        let file: AclFile = toml::from_str(&text)
            .map_err(|e| corpus_err(&origin, e.to_string().trim_end().replace('\n', " ")))?;
        if file.version != 1 {
            return Err(corpus_err(
                &origin,
                format!(
                    "field `version` = {}: this quire reads version 1",
                    file.version
                ),
            ));
        }
        let mut rules = Vec::new();
        for (i, rule) in file.rules.into_iter().enumerate() {
            let mut set = GlobSetBuilder::new();
            for pattern in &rule.paths {
                let glob = Glob::new(pattern).map_err(|e| {
                    corpus_err(
                        &origin,
                        format!("rules[{i}].paths: bad glob {pattern:?}: {e}"),
                    )
                })?;
                set.add(glob);
            }
            let set = set
                .build()
                .map_err(|e| corpus_err(&origin, format!("rules[{i}].paths: {e}")))?;
            let acl = Acl::parse(&rule.acl)
                .map_err(|e| corpus_err(&origin, format!("rules[{i}].acl: {e}")))?;
            rules.push((set, acl));
        }
        Ok(Self { rules })
    }

    fn acl_for(&self, rel: &str) -> Option<Acl> {
        self.rules
            .iter()
            .rev()
            .find(|(set, _)| set.is_match(rel))
            .map(|(_, acl)| acl.clone())
    }
}

fn read_dir(root: &Path) -> Result<Vec<Sourced>> {
    if !std::fs::metadata(root).at(root)?.is_dir() {
        return Err(corpus_err(root.display().to_string(), "is not a directory"));
    }
    let canonical_root = root.canonicalize().at(root)?;
    let rules = AclRules::load(root)?;
    let mut docs = Vec::new();
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
            let target = path.canonicalize().at(path)?;
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
        let rel = relative_id(root, path)?;
        docs.push(Sourced {
            doc: read_file_document(path, &rel, &rules)?,
            origin: path.display().to_string(),
        });
    }
    Ok(docs)
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

fn read_file_document(path: &Path, id: &str, rules: &AclRules) -> Result<Document> {
    let bytes = std::fs::read(path).at(path)?;
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
