//! Thin gRPC adapters of the evaluation service.

use quire_proto::eval::EvaluateParams;
use quire_proto::pb;
use tonic::{Request, Response, Status};

use crate::auth::Role;
use crate::config::ImportRoots;
use crate::error::ServiceError;
use crate::eval_api::{EvalApi, EvalRequest, GateRequest};
use crate::grpc::{Grpc, invalid_request, reason};

/// The evaluation a request asks for; its dataset must lie under an import root.
fn eval_request(
    roots: &ImportRoots,
    m: Option<pb::EvaluateRequest>,
) -> crate::Result<(String, EvalRequest)> {
    let m = m.ok_or_else(|| ServiceError::InvalidArgument("field `eval`: is missing".into()))?;
    let p = EvaluateParams::try_from(m).map_err(invalid_request)?;
    Ok((
        p.target,
        EvalRequest {
            dataset: roots.resolve(&p.dataset.to_string_lossy())?,
            split: p.split,
            mode: p.mode,
            reader: p.reader,
        },
    ))
}

#[tonic::async_trait]
impl pb::eval_service_server::EvalService for Grpc {
    async fn evaluate(
        &self,
        request: Request<pb::EvaluateRequest>,
    ) -> Result<Response<pb::EvalReport>, Status> {
        self.unary(
            "Evaluate",
            Role::Builder,
            request,
            |s, caller, m| async move {
                let (target, request) = eval_request(&s.import_roots, Some(m))?;
                if target.trim().is_empty() {
                    return Err(ServiceError::InvalidArgument(
                        "field `target`: is empty".into(),
                    ));
                }
                let local = s.local.as_actor(&caller.name);
                Ok(local.evaluate(&target, request).await?.into())
            },
        )
        .await
    }

    async fn list_reports(
        &self,
        request: Request<pb::ListReportsRequest>,
    ) -> Result<Response<pb::ListReportsResponse>, Status> {
        self.unary("ListReports", Role::Reader, request, |s, _, m| async move {
            let target = Some(m.target.as_str()).filter(|t| !t.is_empty());
            Ok(pb::ListReportsResponse {
                reports: s
                    .local
                    .reports(target)
                    .await?
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            })
        })
        .await
    }

    async fn gate(
        &self,
        request: Request<pb::GateRequest>,
    ) -> Result<Response<pb::AliasRevision>, Status> {
        self.unary("Gate", Role::Releaser, request, |s, caller, m| async move {
            let (_, eval) = eval_request(&s.import_roots, m.eval)?;
            let local = s.local.as_actor(&caller.name);
            let gate = GateRequest {
                eval,
                min_ndcg10: m.min_ndcg10,
                max_regression: m.max_regression,
            };
            Ok(local.gate(&m.alias, gate, &reason(m.reason)?).await?.into())
        })
        .await
    }

    async fn rebaseline(
        &self,
        request: Request<pb::RebaselineRequest>,
    ) -> Result<Response<pb::AliasRevision>, Status> {
        self.unary(
            "Rebaseline",
            Role::Releaser,
            request,
            |s, caller, m| async move {
                let (_, eval) = eval_request(&s.import_roots, m.eval)?;
                let local = s.local.as_actor(&caller.name);
                Ok(local
                    .rebaseline(&m.alias, eval, &reason(m.reason)?)
                    .await?
                    .into())
            },
        )
        .await
    }
}
