//! Thin gRPC adapters of the evaluation service.

use quire_proto::eval::EvaluateParams;
use quire_proto::pb;
use tonic::{Request, Response, Status};

use crate::auth::{Caller, Role};
use crate::error::ServiceError;
use crate::eval_api::{EvalApi, EvalRequest, GateRequest};
use crate::grpc::{Grpc, Server, invalid_request, reason};

/// The evaluation `caller` asks for in `rpc`: its dataset must lie under an import root, and its
/// queries run as the principal the caller's token allows (recorded in the access log).
fn eval_request(
    s: &Server,
    rpc: &'static str,
    caller: &Caller,
    m: Option<pb::EvaluateRequest>,
) -> crate::Result<(String, EvalRequest)> {
    let m = m.ok_or_else(|| ServiceError::InvalidArgument("field `eval`: is missing".into()))?;
    let p = EvaluateParams::try_from(m).map_err(invalid_request)?;
    let dataset = s.import_roots.resolve(&p.dataset.to_string_lossy())?;
    let reader = s.principal(rpc, caller, &p.target, p.reader)?;
    Ok((
        p.target,
        EvalRequest {
            dataset,
            split: p.split,
            mode: p.mode,
            reader,
            ignore_identical_ids: p.ignore_identical_ids,
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
                let (target, request) = eval_request(&s, "Evaluate", &caller, Some(m))?;
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
            let (_, eval) = eval_request(&s, "Gate", &caller, m.eval)?;
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
                let (_, eval) = eval_request(&s, "Rebaseline", &caller, m.eval)?;
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
