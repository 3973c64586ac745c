//! `quire-acl.toml`: glob rules mapping a directory corpus's paths to ACLs (the last matching
//! rule wins), checked so that a rule that can never match is not silently accepted.
//!
//! Patterns are matched against document ids: paths relative to the corpus root with `/`
//! separators (`hr/leave.md`), case-sensitively (`hr/**` does not match `HR/leave.md`). So a
//! pattern that is absolute (`/etc/**`), climbs out (`../x`) or has a `.` component (`./hr/**`)
//! can never match, and is refused naming the rule. A rule that matches no file of the corpus
//! is reported by [`rule_matches`] (`quire import` warns, and with `--strict` refuses).

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use quire_core::Acl;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// File name of a directory corpus's ACL rules.
pub const ACL_RULES_FILE: &str = "quire-acl.toml";

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

/// The parsed rules of one corpus.
pub(crate) struct AclRules {
    rules: Vec<Rule>,
}

struct Rule {
    patterns: Vec<String>,
    set: GlobSet,
    acl: Acl,
}

/// How many of a corpus's documents one rule matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleMatches {
    /// The rule's position in the file (`rules[i]`).
    pub rule: usize,
    /// Its patterns.
    pub paths: Vec<String>,
    /// Documents any of its patterns matches (whether or not a later rule wins for them).
    pub files: u64,
    /// Documents it would match ignoring case: a hint when `files` is 0.
    pub files_ignoring_case: u64,
}

fn refuse(origin: &str, reason: String) -> StoreError {
    StoreError::Corpus {
        origin: origin.to_owned(),
        reason,
    }
}

/// Why `pattern` can never match a document id, if it cannot.
fn never_matches(pattern: &str) -> Option<&'static str> {
    if pattern.starts_with('/') {
        return Some("is absolute; patterns are relative to the corpus root, like `hr/**`");
    }
    let parts: Vec<&str> = pattern.split('/').collect();
    if parts.contains(&"..") {
        return Some("climbs out of the corpus with `..`; patterns stay under its root");
    }
    if parts.contains(&".") {
        return Some("has a `.` component (`./`), which no document id has; write `hr/**`");
    }
    None
}

impl AclRules {
    /// No rules: every document keeps the ACL its source gives (none, for a directory).
    pub(crate) fn none() -> Self {
        Self { rules: Vec::new() }
    }

    /// Parse and check the text of a rules file; `origin` names it in errors.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Self> {
        let file: AclFile = toml::from_str(text)
            .map_err(|e| refuse(origin, e.to_string().trim_end().replace('\n', " ")))?;
        if file.version != 1 {
            return Err(refuse(
                origin,
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
                if let Some(why) = never_matches(pattern) {
                    return Err(refuse(
                        origin,
                        format!("rules[{i}].paths: {pattern:?} {why}"),
                    ));
                }
                let glob = Glob::new(pattern).map_err(|e| {
                    refuse(
                        origin,
                        format!("rules[{i}].paths: bad glob {pattern:?}: {e}"),
                    )
                })?;
                set.add(glob);
            }
            let set = set
                .build()
                .map_err(|e| refuse(origin, format!("rules[{i}].paths: {e}")))?;
            let acl = Acl::parse(&rule.acl)
                .map_err(|e| refuse(origin, format!("rules[{i}].acl: {e}")))?;
            rules.push(Rule {
                patterns: rule.paths,
                set,
                acl,
            });
        }
        Ok(Self { rules })
    }

    /// The ACL of the last rule matching document id `rel`.
    pub(crate) fn acl_for(&self, rel: &str) -> Option<Acl> {
        self.rules
            .iter()
            .rev()
            .find(|r| r.set.is_match(rel))
            .map(|r| r.acl.clone())
    }

    /// How many of `ids` each rule matches, with and without case.
    pub(crate) fn matches<'a>(
        &self,
        ids: impl Iterator<Item = &'a str> + Clone,
    ) -> Vec<RuleMatches> {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let folded = case_insensitive(&rule.patterns);
                let count =
                    |set: &GlobSet| ids.clone().filter(|id| set.is_match(id)).count() as u64;
                RuleMatches {
                    rule: i,
                    paths: rule.patterns.clone(),
                    files: count(&rule.set),
                    files_ignoring_case: folded.as_ref().map_or(0, count),
                }
            })
            .collect()
    }
}

/// `patterns` matched ignoring case (they already compiled case-sensitively, so this does too).
fn case_insensitive(patterns: &[String]) -> Option<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        set.add(GlobBuilder::new(p).case_insensitive(true).build().ok()?);
    }
    set.build().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn rules(paths: &str) -> Result<AclRules> {
        AclRules::parse(
            &format!(
                "version = 1\n[[rules]]\npaths = [\"**\"]\nacl = [\"*\"]\n[[rules]]\npaths = [{paths}]\nacl = [\"group:hr\"]\n"
            ),
            "quire-acl.toml",
        )
    }

    #[test]
    fn patterns_that_can_never_match_are_refused_naming_the_rule() {
        for (pattern, want) in [
            (
                "\"./hr/**\"",
                "rules[1].paths: \"./hr/**\" has a `.` component",
            ),
            ("\"hr/./x.md\"", "has a `.` component"),
            ("\"../x\"", "rules[1].paths: \"../x\" climbs out"),
            ("\"hr/../../x\"", "climbs out"),
            ("\"/etc/**\"", "rules[1].paths: \"/etc/**\" is absolute"),
        ] {
            let err = rules(pattern)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.starts_with("quire-acl.toml: ") && err.contains(want),
                "{pattern}: {err}"
            );
        }
        for fine in ["\"hr/**\"", "\"**/*.md\"", "\"hr/..x/y\"", "\"a.b/c\""] {
            assert!(rules(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn each_rule_counts_its_matches_with_and_without_case() {
        let r = rules("\"hr/**\", \"people/*.md\"").unwrap();
        let ids = [
            "HR/leave.md",
            "hr/pay.md",
            "people/a.md",
            "people/x/b.md",
            "welcome.md",
        ];
        let m = r.matches(ids.iter().copied());
        assert_eq!((m[0].files, m[1].files), (5, 3), "{m:?}");
        let r = rules("\"Finance/**\"").unwrap();
        let m = r.matches(["finance/a.md", "finance/b.md"].iter().copied());
        assert_eq!((m[1].files, m[1].files_ignoring_case), (0, 2), "{m:?}");
        assert_eq!(r.acl_for("finance/a.md"), Acl::parse(["*"]).ok());
    }
}
