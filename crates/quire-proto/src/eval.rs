//! Conversions of the evaluation service's messages.

use std::path::PathBuf;

use quire_core::Mode;
use quire_core::Reader;
use quire_release::ReportRecord;

use crate::convert::{
    InvalidField, invalid, mode_from_pb, mode_to_pb, parse, reader_from_pb, reader_to_pb,
};
use crate::pb;

/// A validated evaluation request.
#[derive(Clone, Debug)]
pub struct EvaluateParams {
    /// Index id, prefix or alias.
    pub target: String,
    /// The dataset directory (on the server).
    pub dataset: PathBuf,
    /// The qrels split.
    pub split: String,
    /// Retrieval mode.
    pub mode: Mode,
    /// Who the queries run as.
    pub reader: Reader,
    /// Drop a retrieved document whose id is the query's (unset on the wire: true).
    pub ignore_identical_ids: bool,
}

impl TryFrom<pb::EvaluateRequest> for EvaluateParams {
    type Error = InvalidField;

    fn try_from(r: pb::EvaluateRequest) -> Result<Self, InvalidField> {
        if r.dataset.trim().is_empty() {
            return Err(invalid("dataset", "is empty"));
        }
        let split = if r.split.is_empty() {
            "test".to_owned()
        } else {
            r.split
        };
        if split.contains(['/', '\\']) || split.starts_with('.') {
            return Err(invalid("split", format!("{split:?} is not a split name")));
        }
        Ok(Self {
            target: r.target,
            dataset: PathBuf::from(r.dataset),
            split,
            mode: mode_from_pb(r.mode)?,
            reader: reader_from_pb(r.principal)?,
            ignore_identical_ids: r.ignore_identical_ids.unwrap_or(true),
        })
    }
}

/// The request a client sends to evaluate `target`.
pub fn evaluate_request(
    target: &str,
    dataset: &std::path::Path,
    split: &str,
    mode: Mode,
    reader: &Reader,
    ignore_identical_ids: bool,
) -> pb::EvaluateRequest {
    pb::EvaluateRequest {
        target: target.to_owned(),
        dataset: dataset.display().to_string(),
        split: split.to_owned(),
        mode: mode_to_pb(mode),
        principal: Some(reader_to_pb(reader)),
        ignore_identical_ids: Some(ignore_identical_ids),
    }
}

impl From<ReportRecord> for pb::EvalReport {
    fn from(r: ReportRecord) -> Self {
        Self {
            report_id: r.report_id,
            index_id: r.index_id.to_string(),
            eval_spec: r.eval_spec,
            mode: r.mode,
            ndcg_at_10: r.ndcg_at_10,
            recall_at_10: r.recall_at_10,
            recall_at_100: r.recall_at_100,
            mrr_at_10: r.mrr_at_10,
            created: r.created,
            actor: r.actor,
            report_json: r.report.to_string(),
        }
    }
}

impl TryFrom<pb::EvalReport> for ReportRecord {
    type Error = InvalidField;

    fn try_from(r: pb::EvalReport) -> Result<Self, InvalidField> {
        Ok(Self {
            report_id: r.report_id,
            index_id: parse("index_id", &r.index_id)?,
            eval_spec: r.eval_spec,
            mode: r.mode,
            ndcg_at_10: r.ndcg_at_10,
            recall_at_10: r.recall_at_10,
            recall_at_100: r.recall_at_100,
            mrr_at_10: r.mrr_at_10,
            created: r.created,
            actor: r.actor,
            report: serde_json::from_str(&r.report_json)
                .map_err(|e| invalid("report_json", e.to_string()))?,
        })
    }
}
