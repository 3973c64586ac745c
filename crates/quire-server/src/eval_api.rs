//! Evaluation as a service: run a BEIR dataset's judged queries against an index (an alias is
//! resolved to its primary once, at the start), store the report in the registry, and gate
//! aliases on stored reports.

use std::path::PathBuf;

use quire_core::{Acl, IndexId, Reader};
use quire_eval::{EvalError, EvalSpec, dataset, evaluate_with};
use quire_index::{Mode, OpenIndex, Query};
use quire_store::{AliasChange, AliasRevision, GatePolicy, Headline, ReportRecord};

use crate::api::Local;
use crate::cancel::Cancel;
use crate::error::{Result, ServiceError};

/// What to evaluate against.
#[derive(Clone, Debug)]
pub struct EvalRequest {
    /// A BEIR dataset directory on the machine that runs the evaluation (the server's, over
    /// gRPC): `corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`.
    pub dataset: PathBuf,
    /// The qrels split.
    pub split: String,
    /// Retrieval mode.
    pub mode: Mode,
    /// Who the queries run as.
    pub reader: Reader,
    /// Drop a retrieved document whose id is the query's, as BEIR does (part of the eval spec).
    pub ignore_identical_ids: bool,
}

impl EvalRequest {
    /// The eval spec this request evaluates under.
    pub fn spec(&self) -> Result<EvalSpec> {
        let mut spec = EvalSpec::for_dataset(&self.dataset, &self.split)?;
        spec.ignore_identical_ids = self.ignore_identical_ids;
        Ok(spec)
    }
}

/// A gate to put on an alias.
#[derive(Clone, Debug)]
pub struct GateRequest {
    /// The dataset and split whose eval spec the gate pins, the mode and reader to evaluate with.
    pub eval: EvalRequest,
    /// Minimum nDCG@10 of a candidate.
    pub min_ndcg10: Option<f64>,
    /// Largest allowed drop in nDCG@10 against the primary.
    pub max_regression: Option<f64>,
}

/// Evaluation operations.
#[allow(async_fn_in_trait)]
pub trait EvalApi {
    /// Evaluate `target` and store the report.
    async fn evaluate(&self, target: &str, request: EvalRequest) -> Result<ReportRecord>;
    /// Stored reports, oldest first (one index's, when given).
    async fn reports(&self, target: Option<&str>) -> Result<Vec<ReportRecord>>;
    /// Gate `alias` on the request's eval spec: evaluates the current primary when it has no
    /// report under that spec yet. Refused if the alias is gated on another spec (see
    /// [`EvalApi::rebaseline`]).
    async fn gate(&self, alias: &str, request: GateRequest, reason: &str) -> Result<AliasRevision>;
    /// Move `alias`'s gate to the request's eval spec, re-evaluating the current primary.
    async fn rebaseline(
        &self,
        alias: &str,
        request: EvalRequest,
        reason: &str,
    ) -> Result<AliasRevision>;
}

impl From<EvalError> for ServiceError {
    fn from(e: EvalError) -> Self {
        match e {
            EvalError::Io { .. }
            | EvalError::Malformed { .. }
            | EvalError::NoSplit { .. }
            | EvalError::NoQueryText { .. } => ServiceError::InvalidArgument(e.to_string()),
            EvalError::Incomparable(_) => ServiceError::FailedPrecondition(e.to_string()),
            EvalError::Retrieval { .. } => ServiceError::Internal(e.to_string()),
        }
    }
}

/// Refuse to evaluate `index` as a reader who may read none of it: every query would score 0,
/// and a report of zeros looks like a broken retriever rather than a permission. Names the
/// fix: a build spec's `default_acl` when no document has an ACL that admits anyone, else
/// a reader the ACLs admit.
fn refuse_unreadable(open: &OpenIndex, index: &IndexId, reader: &Reader) -> Result<()> {
    if open.allowed(reader).count() > 0 {
        return Ok(());
    }
    let fix = if open.acls().iter().all(Acl::is_empty) {
        "nobody may read any of its documents (they carry no ACL and its build spec sets no \
         `default_acl`): build it with `default_acl = [\"*\"]` in the spec for a public corpus \
         (specs/public.toml does; BEIR corpora carry no ACLs)"
    } else {
        "evaluate as a reader its ACLs admit (`--user`, `--group`)"
    };
    Err(ServiceError::FailedPrecondition(format!(
        "reader {reader} may read no chunk of index {index}, so every query would score 0: {fix}"
    )))
}

impl Local {
    /// Evaluate one resolved index and store the report (blocking).
    /// Stops between queries once `cancel` is raised (its request is gone), storing nothing.
    fn evaluate_index(
        &self,
        index: &IndexId,
        request: &EvalRequest,
        cancel: &Cancel,
    ) -> Result<ReportRecord> {
        let spec = request.spec()?;
        let data = dataset::load(&request.dataset, &request.split)?;
        let open = self.store().open_index(index)?;
        refuse_unreadable(&open, index, &request.reader)?;
        let evaluated = evaluate_with(index.as_str(), &spec, &data, |text| {
            cancel.check("the evaluation")?;
            let query = Query {
                text: text.to_owned(),
                reader: request.reader.clone(),
                k: spec.retrieval_depth(),
                mode: request.mode,
                fusion: None,
                candidates: None,
            };
            Ok::<_, ServiceError>(
                open.search_documents(&query)?
                    .hits
                    .into_iter()
                    .map(|h| h.doc_id)
                    .collect::<Vec<_>>(),
            )
        });
        cancel.check("the evaluation")?;
        let report = evaluated?;
        let m = report.metrics;
        let headline = Headline {
            ndcg_at_10: m.ndcg_at_10,
            recall_at_10: m.recall_at_10,
            recall_at_100: m.recall_at_100,
            mrr_at_10: m.mrr_at_10,
        };
        let full = serde_json::to_value(&report)
            .map_err(|e| ServiceError::Internal(format!("encoding a report: {e}")))?;
        Ok(self.store().store_eval_report(
            index,
            &report.eval_spec,
            request.mode.as_str(),
            headline,
            full,
            self.actor(),
        )?)
    }
}

impl EvalApi for Local {
    async fn evaluate(&self, target: &str, request: EvalRequest) -> Result<ReportRecord> {
        let target = target.to_owned();
        self.cancellable(move |l, cancel| {
            let index = l.resolve(&target)?;
            l.evaluate_index(&index, &request, cancel)
        })
        .await
    }

    async fn reports(&self, target: Option<&str>) -> Result<Vec<ReportRecord>> {
        let target = target.map(str::to_owned);
        self.blocking(move |l| {
            let index = target.map(|t| l.resolve(&t)).transpose()?;
            Ok(l.store().eval_reports(index.as_ref())?)
        })
        .await
    }

    async fn gate(&self, alias: &str, request: GateRequest, reason: &str) -> Result<AliasRevision> {
        let (alias, reason) = (alias.to_owned(), reason.to_owned());
        self.cancellable(move |l, cancel| {
            let spec = request.eval.spec()?.hash();
            let policy = GatePolicy {
                eval_spec: spec.clone(),
                mode: request.eval.mode.as_str().to_owned(),
                min_ndcg10: request.min_ndcg10,
                max_regression: request.max_regression,
            };
            let current = l.store().alias(&alias)?;
            let evaluated = l
                .store()
                .eval_reports(Some(&current.state.primary))?
                .iter()
                .any(|r| r.eval_spec == spec && r.mode == policy.mode);
            if !evaluated && current.state.policy.is_none() {
                l.evaluate_index(&current.state.primary, &request.eval, cancel)?;
            }
            let change = AliasChange::SetPolicy(policy);
            Ok(l.store()
                .change_alias(&alias, &change, l.actor(), &reason)?)
        })
        .await
    }

    async fn rebaseline(
        &self,
        alias: &str,
        request: EvalRequest,
        reason: &str,
    ) -> Result<AliasRevision> {
        let (alias, reason) = (alias.to_owned(), reason.to_owned());
        self.cancellable(move |l, cancel| {
            let current = l.store().alias(&alias)?;
            let old = current.state.policy.clone().ok_or_else(|| {
                ServiceError::FailedPrecondition(format!(
                    "alias {alias:?} has no gate to rebaseline; use `alias gate`"
                ))
            })?;
            let record = l.evaluate_index(&current.state.primary, &request, cancel)?;
            let policy = GatePolicy {
                eval_spec: record.eval_spec,
                mode: request.mode.as_str().to_owned(),
                ..old
            };
            let change = AliasChange::Rebaseline(policy);
            Ok(l.store()
                .change_alias(&alias, &change, l.actor(), &reason)?)
        })
        .await
    }
}
