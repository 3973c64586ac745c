//! Quality gates: evaluation reports stored in the registry, and the check a promotion must pass
//! run over them ([`quire_release::gate`] holds the policy and the pure check).

use quire_core::IndexId;
use quire_release::AuditDraft;
pub use quire_release::gate::{GatePolicy, Headline, ReportRecord};
use serde_json::{Value, json};

use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::tables::encode;

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
        let digest = blake3::hash(&encode(&report)?).to_hex();
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
        let draft = AuditDraft {
            actor: actor.to_owned(),
            action: "eval.report".into(),
            target: index.to_string(),
            after: json!({ "report_id": record.report_id, "ndcg_at_10": record.ndcg_at_10 }),
            evidence: json!({ "eval_spec": eval_spec, "mode": mode }),
            ..AuditDraft::default()
        };
        self.registry.put_eval_report(&record, draft)?;
        Ok(record)
    }

    /// Stored reports, oldest first; only `index`'s when given.
    pub fn eval_reports(&self, index: Option<&IndexId>) -> Result<Vec<ReportRecord>> {
        let all = self.registry.eval_reports()?;
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
