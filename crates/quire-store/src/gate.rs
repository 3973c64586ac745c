//! Quality gates: evaluation reports stored in the registry, and the policy an alias may carry
//! (an eval spec pinned by hash, a minimum nDCG@10, a maximum regression against the primary)
//! that a promotion must pass.
//!
//! Numbers are only ever compared under the same eval spec and retrieval mode: a policy names
//! both, and a report under any other spec or mode does not count.

use std::path::Path;

use quire_core::IndexId;
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::AuditDraft;
use crate::error::{Result, StoreError};
use crate::registry::{EVAL_REPORTS, db_err, decode, encode};
use crate::store::Store;

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

fn all_reports(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    path: &Path,
) -> Result<Vec<ReportRecord>> {
    let err = db_err(path);
    let mut out: Vec<ReportRecord> = Vec::new();
    for entry in table.iter().map_err(|e| err(e.into()))? {
        let (_, v) = entry.map_err(|e| err(e.into()))?;
        out.push(decode(path, v.value())?);
    }
    out.sort_by(|a, b| (&a.created, &a.report_id).cmp(&(&b.created, &b.report_id)));
    Ok(out)
}

/// The newest report for `index` under `policy`'s spec and mode.
fn latest<'a>(
    reports: &'a [ReportRecord],
    index: &IndexId,
    policy: &GatePolicy,
) -> Option<&'a ReportRecord> {
    reports
        .iter()
        .rev()
        .find(|r| &r.index_id == index && r.eval_spec == policy.eval_spec && r.mode == policy.mode)
}

/// Check `candidate` against `policy` (and against `primary`'s report when the policy bounds
/// regression). `Ok` carries the evidence; `Err` says why the gate refuses.
pub(crate) fn check(
    tx: &WriteTransaction,
    path: &Path,
    policy: &GatePolicy,
    candidate: &IndexId,
    primary: &IndexId,
) -> Result<std::result::Result<Value, String>> {
    let err = db_err(path);
    let table = tx.open_table(EVAL_REPORTS).map_err(|e| err(e.into()))?;
    let reports = all_reports(&table, path)?;
    let under = format!("eval spec {} ({} mode)", policy.eval_spec, policy.mode);
    let Some(report) = latest(&reports, candidate, policy) else {
        return Ok(Err(format!(
            "no evaluation report for {candidate} under {under}: run `quire eval` on it first"
        )));
    };
    let mut evidence =
        json!({ "candidate_report": report.report_id, "candidate_ndcg_at_10": report.ndcg_at_10 });
    if let Some(min) = policy.min_ndcg10
        && report.ndcg_at_10 < min
    {
        return Ok(Err(format!(
            "{candidate} has nDCG@10 {:.4} ({}), below the gate's minimum {min}",
            report.ndcg_at_10, report.report_id
        )));
    }
    if let Some(max) = policy.max_regression {
        let Some(base) = latest(&reports, primary, policy) else {
            return Ok(Err(format!(
                "the primary {primary} has no report under {under} to compare with: run `quire alias rebaseline`"
            )));
        };
        evidence["primary_report"] = json!(base.report_id);
        evidence["primary_ndcg_at_10"] = json!(base.ndcg_at_10);
        if report.ndcg_at_10 < base.ndcg_at_10 - max {
            return Ok(Err(format!(
                "{candidate} has nDCG@10 {:.4}, more than {max} below the primary's {:.4} ({})",
                report.ndcg_at_10, base.ndcg_at_10, base.report_id
            )));
        }
    }
    Ok(Ok(evidence))
}

impl Store {
    /// Store an evaluation report of `index` (under `eval_spec`, with `mode`), audited.
    pub fn store_eval_report(
        &self,
        index: &IndexId,
        eval_spec: &str,
        mode: &str,
        headline: Headline,
        report: Value,
        actor: &str,
    ) -> Result<ReportRecord> {
        self.manifest(index)?;
        let digest = blake3::hash(&encode(&report)).to_hex();
        let record = ReportRecord {
            report_id: format!("evr-{}", &digest[..24]),
            index_id: index.clone(),
            eval_spec: eval_spec.to_owned(),
            mode: mode.to_owned(),
            ndcg_at_10: headline.ndcg_at_10,
            recall_at_10: headline.recall_at_10,
            recall_at_100: headline.recall_at_100,
            mrr_at_10: headline.mrr_at_10,
            created: jiff::Timestamp::now().to_string(),
            actor: actor.to_owned(),
            report,
        };
        let path = self.registry.path().to_path_buf();
        self.registry.write(|tx| {
            let err = db_err(&path);
            let mut table = tx.open_table(EVAL_REPORTS).map_err(|e| err(e.into()))?;
            table
                .insert(record.report_id.as_str(), encode(&record).as_slice())
                .map_err(|e| err(e.into()))?;
            let draft = AuditDraft {
                actor: actor.to_owned(),
                action: "eval.report".into(),
                target: index.to_string(),
                after: json!({ "report_id": record.report_id, "ndcg_at_10": record.ndcg_at_10 }),
                evidence: json!({ "eval_spec": eval_spec, "mode": mode }),
                ..AuditDraft::default()
            };
            Ok(((), draft))
        })?;
        Ok(record)
    }

    /// Stored reports, oldest first; only `index`'s when given.
    pub fn eval_reports(&self, index: Option<&IndexId>) -> Result<Vec<ReportRecord>> {
        let path = self.registry.path().to_path_buf();
        let all = self
            .registry
            .read(|tx| {
                let err = db_err(&path);
                let table = tx.open_table(EVAL_REPORTS).map_err(|e| err(e.into()))?;
                all_reports(&table, &path)
            })?
            .unwrap_or_default();
        Ok(all
            .into_iter()
            .filter(|r| index.is_none_or(|i| &r.index_id == i))
            .collect())
    }

    /// One stored report.
    pub fn eval_report(&self, report_id: &str) -> Result<ReportRecord> {
        self.eval_reports(None)?
            .into_iter()
            .find(|r| r.report_id == report_id)
            .ok_or_else(|| StoreError::NotFound {
                kind: "evaluation report",
                id: report_id.to_owned(),
            })
    }
}
