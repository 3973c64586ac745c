//! Canary evaluation's pure part: the report of a replay of sampled queries against an alias's
//! primary and its canary (or shadow), and the auto-rollback policy an alias may carry, parsed
//! strictly and checked against a report.
//!
//! A policy reads `overlap<0.6,empty>+5%`: roll the canary back when, overall or for any intent
//! with enough replayed samples, the mean top-k Jaccard overlap falls below 0.6 or the canary's
//! empty-result rate exceeds the primary's by more than 5 percentage points.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use quire_core::IndexId;
use serde::{Deserialize, Serialize};

use crate::error::{ReleaseError, Result};

/// Replayed samples a stratum (overall, or one intent) needs before a policy judges it, unless
/// the policy says otherwise (`samples>=N`).
pub const DEFAULT_MIN_SAMPLES: u32 = 10;

/// When a canary is rolled back on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackPolicy {
    /// `overlap<X`: mean top-k Jaccard overlap with the primary below X.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_below: Option<f64>,
    /// `rbo<X`: mean rank-biased overlap (p = 0.9) below X.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbo_below: Option<f64>,
    /// `empty>+N%`: the canary's empty-result rate above the primary's by more than N points
    /// (stored as a fraction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_increase_above: Option<f64>,
    /// `p99>+N%`: the canary's p99 latency above the primary's by more than N percent (stored as
    /// a fraction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_increase_above: Option<f64>,
    /// `samples>=N`: replayed samples a stratum needs before it is judged.
    pub min_samples: u32,
}

fn invalid(reason: String) -> ReleaseError {
    ReleaseError::Invalid {
        field: "auto-rollback",
        reason,
    }
}

/// `text` as a number in `range`, or an error naming `term`.
fn number(term: &str, text: &str, range: std::ops::RangeInclusive<f64>) -> Result<f64> {
    let value: f64 = text
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && range.contains(v))
        .ok_or_else(|| {
            invalid(format!(
                "{term:?}: {text:?} is not a number from {} to {}",
                range.start(),
                range.end()
            ))
        })?;
    Ok(value)
}

/// `+N%` as the fraction N/100, N in `0..=max`.
fn increase(term: &str, text: &str, max: f64) -> Result<f64> {
    let digits = text
        .strip_prefix('+')
        .and_then(|t| t.strip_suffix('%'))
        .ok_or_else(|| invalid(format!("{term:?}: expected an increase such as +5%")))?;
    Ok(number(term, digits, 0.0..=max)? / 100.0)
}

impl FromStr for RollbackPolicy {
    type Err = ReleaseError;

    /// Comma-separated terms, each at most once: `overlap<X`, `rbo<X` (X from 0 to 1),
    /// `empty>+N%` (0 to 100), `p99>+N%` (0 to 10000), `samples>=N` (1 to 100000); at least one
    /// threshold.
    fn from_str(text: &str) -> Result<Self> {
        let mut policy = Self {
            overlap_below: None,
            rbo_below: None,
            empty_increase_above: None,
            p99_increase_above: None,
            min_samples: DEFAULT_MIN_SAMPLES,
        };
        let mut seen = std::collections::BTreeSet::new();
        for term in text.split(',').map(str::trim) {
            let name = if let Some(x) = term.strip_prefix("overlap<") {
                policy.overlap_below = Some(number(term, x, 0.0..=1.0)?);
                "overlap"
            } else if let Some(x) = term.strip_prefix("rbo<") {
                policy.rbo_below = Some(number(term, x, 0.0..=1.0)?);
                "rbo"
            } else if let Some(x) = term.strip_prefix("empty>") {
                policy.empty_increase_above = Some(increase(term, x, 100.0)?);
                "empty"
            } else if let Some(x) = term.strip_prefix("p99>") {
                policy.p99_increase_above = Some(increase(term, x, 10_000.0)?);
                "p99"
            } else if let Some(x) = term.strip_prefix("samples>=") {
                policy.min_samples = x
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=100_000).contains(n))
                    .ok_or_else(|| invalid(format!("{term:?}: expected 1 to 100000 samples")))?;
                "samples"
            } else {
                return Err(invalid(format!(
                    "{term:?} is not a term: expected overlap<X, rbo<X, empty>+N%, p99>+N% or \
                     samples>=N, separated by commas"
                )));
            };
            if !seen.insert(name) {
                return Err(invalid(format!("{name} is given twice")));
            }
        }
        if policy.thresholds().next().is_none() {
            return Err(invalid(format!(
                "{text:?} sets no threshold (overlap, rbo, empty or p99)"
            )));
        }
        Ok(policy)
    }
}

/// A number without trailing zeros (`0.6`, `5`).
fn short(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

impl fmt::Display for RollbackPolicy {
    /// The canonical form: terms in a fixed order, `samples` only when not the default.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut terms: Vec<String> = self.thresholds().map(|t| t.to_string()).collect();
        if self.min_samples != DEFAULT_MIN_SAMPLES {
            terms.push(format!("samples>={}", self.min_samples));
        }
        f.write_str(&terms.join(","))
    }
}

/// One threshold of a policy.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Threshold {
    Overlap(f64),
    Rbo(f64),
    Empty(f64),
    P99(f64),
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Overlap(x) => write!(f, "overlap<{}", short(x)),
            Self::Rbo(x) => write!(f, "rbo<{}", short(x)),
            Self::Empty(x) => write!(f, "empty>+{}%", short(x * 100.0)),
            Self::P99(x) => write!(f, "p99>+{}%", short(x * 100.0)),
        }
    }
}

impl Threshold {
    /// Why `s` crosses this threshold, if it does.
    fn crossed(self, s: &Stratum) -> Option<String> {
        match self {
            Self::Overlap(x) if s.jaccard < x => {
                Some(format!("overlap {:.3} < {}", s.jaccard, short(x)))
            }
            Self::Rbo(x) if s.rbo < x => Some(format!("rbo {:.3} < {}", s.rbo, short(x))),
            Self::Empty(x) if s.candidate.empty_rate - s.primary.empty_rate > x => Some(format!(
                "empty {:+.1}% > +{}%",
                (s.candidate.empty_rate - s.primary.empty_rate) * 100.0,
                short(x * 100.0)
            )),
            Self::P99(x) if s.candidate.p99_us > s.primary.p99_us * (1.0 + x) => Some(format!(
                "p99 {:.0} us > {:.0} us +{}%",
                s.candidate.p99_us,
                s.primary.p99_us,
                short(x * 100.0)
            )),
            _ => None,
        }
    }
}

impl RollbackPolicy {
    fn thresholds(&self) -> impl Iterator<Item = Threshold> {
        [
            self.overlap_below.map(Threshold::Overlap),
            self.rbo_below.map(Threshold::Rbo),
            self.empty_increase_above.map(Threshold::Empty),
            self.p99_increase_above.map(Threshold::P99),
        ]
        .into_iter()
        .flatten()
    }

    /// Every threshold `report` crosses, overall or for an intent with at least `min_samples`
    /// replayed samples, as `intent hr: overlap 0.120 < 0.6` (intents in order).
    pub fn breaches(&self, report: &CanaryReport) -> Vec<String> {
        let strata = std::iter::once(("overall".to_owned(), &report.overall)).chain(
            report
                .per_intent
                .iter()
                .map(|(intent, s)| (format!("intent {intent}"), s)),
        );
        let mut out = Vec::new();
        for (name, stratum) in strata {
            if stratum.replayed < self.min_samples {
                continue;
            }
            out.extend(
                self.thresholds()
                    .filter_map(|t| t.crossed(stratum))
                    .map(|why| format!("{name}: {why}")),
            );
        }
        out
    }
}

/// One arm's side of a stratum.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    /// Share of replayed queries that found nothing.
    pub empty_rate: f64,
    /// Median replay latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile replay latency, microseconds.
    pub p99_us: f64,
}

/// The comparison over one stratum: all samples, or one intent's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stratum {
    /// Samples replayed on both arms.
    pub replayed: u32,
    /// Mean Jaccard overlap of the top-k document ids.
    pub jaccard: f64,
    /// Mean rank-biased overlap (p = 0.9) of the top-k document ids.
    pub rbo: f64,
    /// The primary's side.
    pub primary: ArmSummary,
    /// The candidate's side.
    pub candidate: ArmSummary,
}

/// nDCG@10 of both indices from the stored reports under the alias's gate (its eval spec and
/// mode), when both have one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateNdcg {
    /// The primary's newest report under the gate.
    pub primary_report: String,
    /// Its nDCG@10.
    pub primary: f64,
    /// The candidate's newest report under the gate.
    pub candidate_report: String,
    /// Its nDCG@10.
    pub candidate: f64,
}

/// A canary evaluation: sampled queries replayed under their own principals against the
/// primary and the candidate (the canary, or the shadow) of one alias revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryReport {
    /// `cnr-` + blake3 of the report without its id and times (24 hex characters).
    pub report_id: String,
    /// The alias.
    pub alias: String,
    /// The revision evaluated.
    pub revision: u64,
    /// The primary index.
    pub primary: IndexId,
    /// The candidate index.
    pub candidate: IndexId,
    /// `canary` or `shadow`.
    pub arm: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// The same, in microseconds since the epoch.
    pub created_us: u64,
    /// Who ran it (the server's scheduler, or the caller).
    pub actor: String,
    /// Samples of the last this-many seconds were considered.
    pub window_secs: u64,
    /// Samples considered (at most the per-intent cap of each intent).
    pub considered: u32,
    /// Samples that could not be replayed (only their query's hash was stored).
    pub not_replayable: u32,
    /// Every replayed sample.
    pub overall: Stratum,
    /// Per intent label (`(none)` for requests that named none).
    pub per_intent: BTreeMap<String, Stratum>,
    /// nDCG@10 under the alias's gate, when both indices have a report under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndcg_at_10: Option<GateNdcg>,
    /// The alias's auto-rollback policy when evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RollbackPolicy>,
    /// The thresholds the report crosses under the policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breaches: Vec<String>,
}

impl CanaryReport {
    /// The report id: blake3 over the canonical JSON of everything but the id, time and actor,
    /// so the same evaluation of the same samples has the same id.
    pub fn identify(&mut self) -> Result<()> {
        let mut unnamed = self.clone();
        unnamed.report_id = String::new();
        unnamed.created = String::new();
        unnamed.created_us = 0;
        unnamed.actor = String::new();
        let bytes = serde_json::to_vec(&unnamed).map_err(|source| ReleaseError::Encode {
            what: "canary report",
            source,
        })?;
        let mut h = blake3::Hasher::new_derive_key("quire 2026 canary report v1");
        h.update(&self.created_us.to_le_bytes());
        h.update(&bytes);
        self.report_id = format!("cnr-{}", &h.finalize().to_hex()[..24]);
        Ok(())
    }

    /// Whether the policy asks for the canary to be rolled back.
    pub fn asks_rollback(&self) -> bool {
        self.arm == "canary" && self.policy.is_some() && !self.breaches.is_empty()
    }
}

/// Which arm of the alias to compare with its primary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CandidateArm {
    /// The canary if there is one, else the shadow.
    #[default]
    Auto,
    /// The canary.
    Canary,
    /// The shadow.
    Shadow,
}

/// Most samples replayed per intent in one evaluation.
pub const MAX_PER_INTENT: usize = 1000;

/// What to evaluate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanaryEvalRequest {
    /// Samples of the last this-many seconds.
    pub window_secs: u64,
    /// The newest this-many samples of each intent (1 to [`MAX_PER_INTENT`]).
    pub per_intent: usize,
    /// The arm to compare.
    pub arm: CandidateArm,
}

impl CandidateArm {
    /// `canary`, `shadow`, or empty for [`CandidateArm::Auto`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "",
            Self::Canary => "canary",
            Self::Shadow => "shadow",
        }
    }
}

impl FromStr for CandidateArm {
    type Err = ReleaseError;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "" => Ok(Self::Auto),
            "canary" => Ok(Self::Canary),
            "shadow" => Ok(Self::Shadow),
            other => Err(ReleaseError::Invalid {
                field: "arm",
                reason: format!("{other:?} is not an arm: expected canary or shadow"),
            }),
        }
    }
}

impl CanaryEvalRequest {
    /// A checked request: a window of 1 s to 366 days, 1 to [`MAX_PER_INTENT`] samples per
    /// intent (0 means 50).
    pub fn new(window_secs: u64, per_intent: usize, arm: CandidateArm) -> Result<Self> {
        if !(1..=366 * 86_400).contains(&window_secs) {
            return Err(ReleaseError::Invalid {
                field: "window",
                reason: format!("{window_secs} s is not between 1 s and 366 days"),
            });
        }
        if per_intent > MAX_PER_INTENT {
            return Err(ReleaseError::Invalid {
                field: "per_intent",
                reason: format!("{per_intent} exceeds {MAX_PER_INTENT}"),
            });
        }
        let per_intent = if per_intent == 0 { 50 } else { per_intent };
        Ok(Self {
            window_secs,
            per_intent,
            arm,
        })
    }
}

impl Default for CanaryEvalRequest {
    fn default() -> Self {
        Self {
            window_secs: 3600,
            per_intent: 50,
            arm: CandidateArm::Auto,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> std::result::Result<RollbackPolicy, String> {
        text.parse().map_err(|e: ReleaseError| e.to_string())
    }

    #[test]
    fn policies_parse_strictly_and_print_canonically() {
        let p = policy("overlap<0.6,empty>+5%").unwrap();
        assert_eq!(p.overlap_below, Some(0.6));
        assert_eq!(p.empty_increase_above, Some(0.05));
        assert_eq!(p.min_samples, DEFAULT_MIN_SAMPLES);
        assert_eq!(p.to_string(), "overlap<0.6,empty>+5%");
        let all = policy(" samples>=5 , p99>+50%,rbo<0.5,empty>+2.5%,overlap<0.7").unwrap();
        assert_eq!(
            all.to_string(),
            "overlap<0.7,rbo<0.5,empty>+2.5%,p99>+50%,samples>=5"
        );
        assert_eq!(
            policy(&all.to_string()).unwrap(),
            all,
            "the canonical form parses back"
        );
        for (bad, why) in [
            ("", "is not a term"),
            ("overlap<1.5", "not a number from 0 to 1"),
            ("overlap<x", "not a number"),
            ("overlap>0.6", "is not a term"),
            ("empty>5%", "expected an increase such as +5%"),
            ("empty>+5", "expected an increase"),
            ("empty>+500%", "not a number from 0 to 100"),
            ("overlap<0.6,overlap<0.5", "overlap is given twice"),
            ("samples>=10", "sets no threshold"),
            ("samples>=0,overlap<0.5", "expected 1 to 100000 samples"),
            ("overlap<0.6;empty>+5%", "not a number"),
        ] {
            let err = policy(bad).err().unwrap_or_default();
            assert!(
                err.starts_with("auto-rollback: ") && err.contains(why),
                "{bad:?}: {err}"
            );
        }
    }

    fn stratum(replayed: u32, jaccard: f64, empty: (f64, f64)) -> Stratum {
        Stratum {
            replayed,
            jaccard,
            rbo: jaccard,
            primary: ArmSummary {
                empty_rate: empty.0,
                p50_us: 100.0,
                p99_us: 200.0,
            },
            candidate: ArmSummary {
                empty_rate: empty.1,
                p50_us: 100.0,
                p99_us: 200.0,
            },
        }
    }

    #[test]
    fn breaches_name_the_stratum_and_skip_thin_ones() {
        let report = CanaryReport {
            report_id: String::new(),
            alias: "prod".into(),
            revision: 3,
            primary: format!("idx-{}", "1".repeat(64)).parse().unwrap(),
            candidate: format!("idx-{}", "2".repeat(64)).parse().unwrap(),
            arm: "canary".into(),
            created: String::new(),
            created_us: 0,
            actor: String::new(),
            window_secs: 3600,
            considered: 40,
            not_replayable: 0,
            overall: stratum(40, 0.7, (0.0, 0.1)),
            per_intent: BTreeMap::from([
                ("eng".to_owned(), stratum(20, 1.0, (0.0, 0.0))),
                ("hr".to_owned(), stratum(18, 0.2, (0.0, 0.2))),
                ("rare".to_owned(), stratum(2, 0.0, (0.0, 1.0))),
            ]),
            ndcg_at_10: None,
            policy: None,
            breaches: Vec::new(),
        };
        let p = policy("overlap<0.6,empty>+5%").unwrap();
        assert_eq!(
            p.breaches(&report),
            [
                "overall: empty +10.0% > +5%",
                "intent hr: overlap 0.200 < 0.6",
                "intent hr: empty +20.0% > +5%"
            ]
        );
        let mut a = report.clone();
        a.identify().unwrap();
        let mut b = report;
        b.actor = "someone else".into();
        b.identify().unwrap();
        assert!(a.report_id.starts_with("cnr-") && a.report_id.len() == 28);
        assert_eq!(a.report_id, b.report_id);
    }
}
