//! [`CanaryApi`] over gRPC.

use quire_proto::canary::list_samples_request;
use quire_proto::pb::canary_service_client::CanaryServiceClient;
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
}
