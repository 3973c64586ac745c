//! Thin gRPC adapters of the canary service.

use quire_proto::pb;
use quire_release::SampleListing;
use tonic::{Request, Response, Status};

use crate::auth::Role;
use crate::canary_api::CanaryApi;
use crate::grpc::{Grpc, invalid_request};

#[tonic::async_trait]
impl pb::canary_service_server::CanaryService for Grpc {
    async fn list_samples(
        &self,
        request: Request<pb::ListSamplesRequest>,
    ) -> Result<Response<pb::ListSamplesResponse>, Status> {
        self.unary(
            "ListSamples",
            Role::Releaser,
            request,
            |s, _, m| async move {
                let listing = SampleListing::try_from(m).map_err(invalid_request)?;
                let samples = s.local.samples(listing).await?;
                Ok(pb::ListSamplesResponse {
                    samples: samples.into_iter().map(Into::into).collect(),
                })
            },
        )
        .await
    }
}
