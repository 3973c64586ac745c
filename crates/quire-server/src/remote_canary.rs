//! [`CanaryApi`] over gRPC.

use quire_proto::canary::{evaluate_canary_request, feedback_receipt, list_samples_request};
use quire_proto::pb;
use quire_proto::pb::canary_service_client::CanaryServiceClient;
use quire_proto::pb::retrieval_service_client::RetrievalServiceClient;
use quire_release::CanaryOutcome;
use quire_release::canary::{CanaryEvalRequest, CanaryReport};
use quire_release::outcome::{AliasReport, FeedbackLabel, FeedbackReceipt};
use quire_release::{SampleListing, SampleRecord};
use tonic::transport::Channel;

use crate::canary_api::CanaryApi;
use crate::error::Result;
use crate::remote::{Remote, malformed_response};

impl Remote {
    fn canary(&self) -> CanaryServiceClient<Channel> {
        CanaryServiceClient::new(self.channel()).max_decoding_message_size(usize::MAX)
    }
}

impl CanaryApi for Remote {
    async fn samples(&self, listing: SampleListing) -> Result<Vec<SampleRecord>> {
        let request = self.request(list_samples_request(&listing))?;
        self.canary()
            .list_samples(request)
            .await?
            .into_inner()
            .samples
            .into_iter()
            .map(|s| SampleRecord::try_from(s).map_err(malformed_response))
            .collect()
    }

    async fn evaluate_canary(
        &self,
        alias: &str,
        request: CanaryEvalRequest,
    ) -> Result<CanaryOutcome> {
        let request = self.request(evaluate_canary_request(alias, &request))?;
        let evaluation = self.canary().evaluate_canary(request).await?.into_inner();
        CanaryOutcome::try_from(evaluation).map_err(malformed_response)
    }

    async fn feedback(
        &self,
        request_id: &str,
        success: bool,
        label: Option<FeedbackLabel>,
    ) -> Result<FeedbackReceipt> {
        let request = self.request(pb::FeedbackRequest {
            request_id: request_id.to_owned(),
            success,
            label: label.map(String::from).unwrap_or_default(),
        })?;
        let response = RetrievalServiceClient::new(self.channel())
            .feedback(request)
            .await?
            .into_inner();
        feedback_receipt(request_id, success, response).map_err(malformed_response)
    }

    async fn alias_report(&self, alias: &str, since_secs: u64) -> Result<AliasReport> {
        let request = self.request(pb::AliasReportRequest {
            alias: alias.to_owned(),
            since: format!("{since_secs}s"),
        })?;
        Ok(self
            .canary()
            .alias_report(request)
            .await?
            .into_inner()
            .into())
    }

    async fn canary_reports(&self, alias: &str) -> Result<Vec<CanaryReport>> {
        let request = self.request(pb::ListCanaryReportsRequest {
            alias: alias.to_owned(),
        })?;
        self.canary()
            .list_canary_reports(request)
            .await?
            .into_inner()
            .reports
            .into_iter()
            .map(|r| CanaryReport::try_from(r).map_err(malformed_response))
            .collect()
    }
}
