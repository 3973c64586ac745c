//! Quality gates: the policy an alias may carry (an eval spec pinned by hash, a minimum
//! nDCG@10, a maximum regression against the primary) and the check a promotion must pass, a
//! pure function of the policy and the stored reports.
//!
//! Numbers are only ever compared under the same eval spec and retrieval mode: a policy names
//! both, and a report under any other spec or mode does not count.

use quire_core::IndexId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The gate an alias's promotions must pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GatePolicy {
    /// The eval spec hash reports must be measured under.
    pub eval_spec: String,
    /// The retrieval mode reports must be measured with (`hybrid`, `bm25`, `vector`).
    pub mode: String,
    /// A candidate's nDCG@10 must reach this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ndcg10: Option<f64>,
    /// A candidate's nDCG@10 may fall at most this far below the primary's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_regression: Option<f64>,
}

/// An evaluation report as the registry keeps it: the headline numbers for gating and listing,
/// and the full report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportRecord {
    /// `evr-` + blake3 of the full report (24 hex characters).
    pub report_id: String,
    /// The index evaluated.
    pub index_id: IndexId,
    /// The eval spec hash.
    pub eval_spec: String,
    /// The retrieval mode.
    pub mode: String,
    /// nDCG@10.
    pub ndcg_at_10: f64,
    /// Recall@10.
    pub recall_at_10: f64,
    /// Recall@100.
    pub recall_at_100: f64,
    /// MRR@10.
    pub mrr_at_10: f64,
    /// When it was stored (RFC 3339).
    pub created: String,
    /// Who ran it.
    pub actor: String,
    /// The full report (per-query scores and top-10 documents).
    pub report: Value,
}

/// The headline numbers of a report to store.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Headline {
    /// nDCG@10.
    pub ndcg_at_10: f64,
    /// Recall@10.
    pub recall_at_10: f64,
    /// Recall@100.
    pub recall_at_100: f64,
    /// MRR@10.
    pub mrr_at_10: f64,
}

/// The newest report for `index` under `policy`'s spec and mode.
pub fn latest<'a>(
    reports: &'a [ReportRecord],
    index: &IndexId,
    policy: &GatePolicy,
) -> Option<&'a ReportRecord> {
    reports
        .iter()
        .rev()
        .find(|r| &r.index_id == index && r.eval_spec == policy.eval_spec && r.mode == policy.mode)
}

/// [`check`] over every stored report (oldest first): each index's newest report under the
/// policy's spec and mode counts.
pub fn check_reports(
    reports: &[ReportRecord],
    policy: &GatePolicy,
    candidate: &IndexId,
    primary: &IndexId,
) -> Result<Value, String> {
    let candidate_report = latest(reports, candidate, policy);
    let primary_report = latest(reports, primary, policy);
    check(policy, candidate, candidate_report, primary, primary_report).map_err(|refusal| {
        if candidate_report.is_some() {
            return refusal;
        }
        // Reports under other specs in the gate's mode: most likely the evaluator changed (a
        // new eval spec field, a new version) since the gate was pinned. Say how to move on
        // instead of asking for an evaluation that was run.
        let mut others: Vec<&str> = reports
            .iter()
            .filter(|r| &r.index_id == candidate && r.mode == policy.mode)
            .map(|r| r.eval_spec.as_str())
            .collect();
        others.sort_unstable();
        others.dedup();
        if others.is_empty() {
            return refusal;
        }
        format!(
            "{refusal}; it has reports under other eval specs ({}): if the evaluator or the \
             dataset changed since the gate was pinned, move the gate with `quire alias \
             rebaseline`",
            others.join(", ")
        )
    })
}

/// Check `candidate` against `policy`, and against the primary's report when the policy bounds
/// regression. The reports are each index's newest under the policy's spec and mode. `Ok`
/// carries the evidence; `Err` says why the gate refuses.
pub fn check(
    policy: &GatePolicy,
    candidate: &IndexId,
    candidate_report: Option<&ReportRecord>,
    primary: &IndexId,
    primary_report: Option<&ReportRecord>,
) -> Result<Value, String> {
    let under = format!("eval spec {} ({} mode)", policy.eval_spec, policy.mode);
    let Some(report) = candidate_report else {
        return Err(format!(
            "no evaluation report for {candidate} under {under}: run `quire eval` on it first"
        ));
    };
    let mut evidence =
        json!({ "candidate_report": report.report_id, "candidate_ndcg_at_10": report.ndcg_at_10 });
    if let Some(min) = policy.min_ndcg10
        && report.ndcg_at_10 < min
    {
        return Err(format!(
            "{candidate} has nDCG@10 {:.4} ({}), below the gate's minimum {min}",
            report.ndcg_at_10, report.report_id
        ));
    }
    if let Some(max) = policy.max_regression {
        let Some(base) = primary_report else {
            return Err(format!(
                "the primary {primary} has no report under {under} to compare with: run `quire alias rebaseline`"
            ));
        };
        evidence["primary_report"] = json!(base.report_id);
        evidence["primary_ndcg_at_10"] = json!(base.ndcg_at_10);
        if report.ndcg_at_10 < base.ndcg_at_10 - max {
            return Err(format!(
                "{candidate} has nDCG@10 {:.4}, more than {max} below the primary's {:.4} ({})",
                report.ndcg_at_10, base.ndcg_at_10, base.report_id
            ));
        }
    }
    Ok(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(index: &IndexId, spec: &str, mode: &str, ndcg: f64) -> ReportRecord {
        ReportRecord {
            report_id: format!("evr-{spec}"),
            index_id: index.clone(),
            eval_spec: spec.into(),
            mode: mode.into(),
            ndcg_at_10: ndcg,
            recall_at_10: 0.0,
            recall_at_100: 0.0,
            mrr_at_10: 0.0,
            created: String::new(),
            actor: String::new(),
            report: Value::Null,
        }
    }

    /// Issue 16: after the eval spec changed (identical ids ignored by default), a candidate
    /// evaluated under the new spec is refused by a gate pinned to the old one, and the refusal
    /// names `alias rebaseline` rather than asking for an evaluation that was run.
    #[test]
    fn a_candidate_under_another_spec_is_refused_naming_rebaseline() {
        let id = |c: char| -> IndexId {
            format!("idx-{}", c.to_string().repeat(64))
                .parse()
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let (primary, candidate) = (id('a'), id('b'));
        let policy = GatePolicy {
            eval_spec: "old".into(),
            mode: "bm25".into(),
            min_ndcg10: Some(0.5),
            max_regression: None,
        };
        let none = check_reports(&[], &policy, &candidate, &primary).err();
        assert_eq!(
            none.as_deref(),
            Some(
                format!(
                    "no evaluation report for {candidate} under eval spec old (bm25 mode): run \
                     `quire eval` on it first"
                )
                .as_str()
            )
        );
        let reports = [
            report(&candidate, "new", "bm25", 0.9),
            report(&candidate, "other-mode", "vector", 0.9),
        ];
        let err = check_reports(&reports, &policy, &candidate, &primary)
            .err()
            .unwrap_or_default();
        assert!(
            err.ends_with(
                "it has reports under other eval specs (new): if the evaluator or the dataset \
                 changed since the gate was pinned, move the gate with `quire alias rebaseline`"
            ),
            "{err}"
        );
        let passing = [report(&candidate, "old", "bm25", 0.9)];
        assert!(check_reports(&passing, &policy, &candidate, &primary).is_ok());
    }
}
