//! What `quire import` says about a directory corpus's `quire-acl.toml`: how many documents
//! each rule matches, a warning for a rule that matches none (often `hr/**` against a folder
//! named `HR/`: matching is case-sensitive), and with `--strict` a refusal instead.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use quire_store::CorpusFormat;
use quire_store::import::{ACL_RULES_FILE, DEFAULT_MAX_DOCUMENT_BYTES, RuleMatches, rule_matches};
use serde::Serialize;

/// An import's result with its ACL rule counts (`--json`: the snapshot's fields and
/// `acl_rules`).
#[derive(Serialize)]
pub(crate) struct Imported<'a, T: Serialize> {
    #[serde(flatten)]
    pub(crate) snapshot: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) acl_rules: Option<&'a [RuleMatches]>,
}

/// The rule counts of the corpus at `path` when it is a directory with a rules file, after
/// warning on stderr about each rule that matches no document; with `strict`, such a rule is an
/// error (before anything is imported).
pub(crate) fn check(
    path: &Path,
    format: Option<CorpusFormat>,
    strict: bool,
) -> Result<Option<Vec<RuleMatches>>> {
    let is_dir = format.map_or_else(|| path.is_dir(), |f| f == CorpusFormat::Dir);
    if !is_dir {
        return Ok(None);
    }
    let Some(rules) = rule_matches(path, DEFAULT_MAX_DOCUMENT_BYTES)? else {
        return Ok(None);
    };
    let file = path.join(ACL_RULES_FILE);
    let unmatched: Vec<String> = rules
        .iter()
        .filter(|r| r.files == 0)
        .map(|r| {
            let hint = match r.files_ignoring_case {
                0 => String::new(),
                n => format!(" (matching is case-sensitive; {n} would match ignoring case)"),
            };
            format!(
                "{}: rules[{}] ({}) matches no document{hint}",
                file.display(),
                r.rule,
                r.paths.join(", ")
            )
        })
        .collect();
    if strict && !unmatched.is_empty() {
        anyhow::bail!("{} (--strict)", unmatched.join("; "));
    }
    let mut stderr = std::io::stderr().lock();
    for warning in &unmatched {
        writeln!(stderr, "warning: {warning}")?;
    }
    Ok(Some(rules))
}

/// The rule counts as `import` prints them: one line per rule.
pub(crate) fn print(out: &mut dyn Write, rules: Option<&[RuleMatches]>) -> std::io::Result<()> {
    let Some(rules) = rules else {
        return Ok(());
    };
    writeln!(
        out,
        "  acl rules  (documents each rule of {ACL_RULES_FILE} matches)"
    )?;
    for r in rules {
        writeln!(
            out,
            "    rules[{}] {:>6}  {}",
            r.rule,
            r.files,
            r.paths.join(", ")
        )?;
    }
    Ok(())
}
