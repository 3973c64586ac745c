//! [`EvalApi`] over gRPC. Dataset paths name directories on the server.

use quire_proto::eval::evaluate_request;
use quire_proto::pb;
use quire_proto::pb::eval_service_client::EvalServiceClient;
use quire_store::{AliasRevision, ReportRecord};
use tonic::transport::Channel;

use crate::error::Result;
use crate::eval_api::{EvalApi, EvalRequest, GateRequest};
use crate::remote::{Remote, malformed_response};

impl Remote {
    fn eval(&self) -> EvalServiceClient<Channel> {
        EvalServiceClient::new(self.channel()).max_decoding_message_size(usize::MAX)
    }
}

fn wire(target: &str, r: &EvalRequest) -> pb::EvaluateRequest {
    evaluate_request(
        target,
        &r.dataset,
        &r.split,
        r.mode,
        &r.reader,
        r.ignore_identical_ids,
    )
}

impl EvalApi for Remote {
    async fn evaluate(&self, target: &str, request: EvalRequest) -> Result<ReportRecord> {
        let request = self.request(wire(target, &request))?;
        ReportRecord::try_from(self.eval().evaluate(request).await?.into_inner())
            .map_err(malformed_response)
    }

    async fn reports(&self, target: Option<&str>) -> Result<Vec<ReportRecord>> {
        let request = self.request(pb::ListReportsRequest {
            target: target.unwrap_or_default().to_owned(),
        })?;
        self.eval()
            .list_reports(request)
            .await?
            .into_inner()
            .reports
            .into_iter()
            .map(|r| ReportRecord::try_from(r).map_err(malformed_response))
            .collect()
    }

    async fn gate(&self, alias: &str, request: GateRequest, reason: &str) -> Result<AliasRevision> {
        let request = self.request(pb::GateRequest {
            alias: alias.to_owned(),
            eval: Some(wire("", &request.eval)),
            min_ndcg10: request.min_ndcg10,
            max_regression: request.max_regression,
            reason: reason.to_owned(),
        })?;
        AliasRevision::try_from(self.eval().gate(request).await?.into_inner())
            .map_err(malformed_response)
    }

    async fn rebaseline(
        &self,
        alias: &str,
        request: EvalRequest,
        reason: &str,
    ) -> Result<AliasRevision> {
        let request = self.request(pb::RebaselineRequest {
            alias: alias.to_owned(),
            eval: Some(wire("", &request)),
            reason: reason.to_owned(),
        })?;
        AliasRevision::try_from(self.eval().rebaseline(request).await?.into_inner())
            .map_err(malformed_response)
    }
}
