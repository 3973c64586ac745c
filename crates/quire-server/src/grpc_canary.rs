//! Thin gRPC adapters of the canary service.

use quire_proto::pb;
use quire_release::SampleListing;
use quire_release::canary::CanaryEvalRequest;
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

    async fn evaluate_canary(
        &self,
        request: Request<pb::EvaluateCanaryRequest>,
    ) -> Result<Response<pb::CanaryEvaluation>, Status> {
        self.unary(
            "EvaluateCanary",
            Role::Releaser,
            request,
            |s, caller, m| async move {
                let (alias, request) =
                    <(String, CanaryEvalRequest)>::try_from(m).map_err(invalid_request)?;
                let local = s.local.as_actor(&caller.name);
                Ok(local.evaluate_canary(&alias, request).await?.into())
            },
        )
        .await
    }

    async fn alias_report(
        &self,
        request: Request<pb::AliasReportRequest>,
    ) -> Result<Response<pb::AliasReportResponse>, Status> {
        self.unary("AliasReport", Role::Reader, request, |s, _, m| async move {
            let since = quire_proto::canary::report_since(&m.since).map_err(invalid_request)?;
            Ok(s.local.alias_report(&m.alias, since).await?.into())
        })
        .await
    }

    async fn list_canary_reports(
        &self,
        request: Request<pb::ListCanaryReportsRequest>,
    ) -> Result<Response<pb::ListCanaryReportsResponse>, Status> {
        self.unary(
            "ListCanaryReports",
            Role::Reader,
            request,
            |s, _, m| async move {
                let reports = s.local.canary_reports(&m.alias).await?;
                Ok(pb::ListCanaryReportsResponse {
                    reports: reports.into_iter().map(Into::into).collect(),
                })
            },
        )
        .await
    }
}
