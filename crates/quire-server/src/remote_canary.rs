//! [`CanaryApi`] over gRPC.

use quire_proto::canary::{evaluate_canary_request, list_samples_request};
use quire_proto::pb;
use quire_proto::pb::canary_service_client::CanaryServiceClient;
use quire_release::CanaryOutcome;
use quire_release::canary::{CanaryEvalRequest, CanaryReport};
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
