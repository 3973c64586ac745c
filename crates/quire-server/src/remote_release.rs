//! [`ReleaseApi`] over gRPC.

use quire_proto::pb;
use quire_proto::pb::audit_service_client::AuditServiceClient;
use quire_proto::pb::release_service_client::ReleaseServiceClient;
use quire_proto::release::{change_alias_request, revisions};
use quire_store::{
    AliasChangeRequest, AliasRevision, AuditEvent, AuditVerification, GcReport, Pin, ShadowReport,
};
use tonic::transport::Channel;

use crate::error::Result;
use crate::release_api::{AuditPage, ReleaseApi};
use crate::remote::{Remote, malformed_response};

impl Remote {
    fn release(&self) -> ReleaseServiceClient<Channel> {
        ReleaseServiceClient::new(self.channel()).max_decoding_message_size(usize::MAX)
    }

    fn audit(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.channel()).max_decoding_message_size(usize::MAX)
    }
}

impl ReleaseApi for Remote {
    async fn change_alias(
        &self,
        alias: &str,
        change: AliasChangeRequest,
        reason: &str,
        force: bool,
    ) -> Result<AliasRevision> {
        let request = self.request(change_alias_request(alias, &change, reason, force))?;
        let r = self.release().change_alias(request).await?.into_inner();
        AliasRevision::try_from(r).map_err(malformed_response)
    }

    async fn alias(&self, alias: &str) -> Result<AliasRevision> {
        let request = self.request(pb::GetAliasRequest {
            alias: alias.to_owned(),
        })?;
        let r = self.release().get_alias(request).await?.into_inner();
        AliasRevision::try_from(r).map_err(malformed_response)
    }

    async fn alias_history(&self, alias: &str) -> Result<Vec<AliasRevision>> {
        let request = self.request(pb::GetAliasRequest {
            alias: alias.to_owned(),
        })?;
        revisions(self.release().alias_history(request).await?.into_inner())
            .map_err(malformed_response)
    }

    async fn aliases(&self) -> Result<Vec<AliasRevision>> {
        let request = self.request(pb::ListAliasesRequest {})?;
        revisions(self.release().list_aliases(request).await?.into_inner())
            .map_err(malformed_response)
    }

    async fn shadow_report(&self, alias: &str) -> Result<ShadowReport> {
        let request = self.request(pb::GetAliasRequest {
            alias: alias.to_owned(),
        })?;
        let r = self.release().shadow_report(request).await?.into_inner();
        ShadowReport::try_from(r).map_err(malformed_response)
    }

    async fn pin(
        &self,
        target: &str,
        holder: &str,
        expires: Option<&str>,
        reason: &str,
    ) -> Result<Pin> {
        let request = self.request(pb::PinRequest {
            index: target.to_owned(),
            holder: holder.to_owned(),
            expires: expires.unwrap_or_default().to_owned(),
            reason: reason.to_owned(),
        })?;
        Pin::try_from(self.release().pin(request).await?.into_inner()).map_err(malformed_response)
    }

    async fn unpin(&self, target: &str, holder: &str, reason: &str) -> Result<Pin> {
        let request = self.request(pb::UnpinRequest {
            index: target.to_owned(),
            holder: holder.to_owned(),
            reason: reason.to_owned(),
        })?;
        Pin::try_from(self.release().unpin(request).await?.into_inner()).map_err(malformed_response)
    }

    async fn pins(&self) -> Result<Vec<Pin>> {
        let request = self.request(pb::ListPinsRequest {})?;
        self.release()
            .list_pins(request)
            .await?
            .into_inner()
            .pins
            .into_iter()
            .map(|p| Pin::try_from(p).map_err(malformed_response))
            .collect()
    }

    async fn gc(&self, dry_run: bool, reason: &str) -> Result<GcReport> {
        let request = self.request(pb::GcRequest {
            dry_run,
            reason: reason.to_owned(),
        })?;
        GcReport::try_from(self.release().collect_garbage(request).await?.into_inner())
            .map_err(malformed_response)
    }

    async fn delete_index(&self, target: &str, reason: &str) -> Result<()> {
        let request = self.request(pb::DeleteIndexRequest {
            index: target.to_owned(),
            reason: reason.to_owned(),
        })?;
        self.release().delete_index(request).await?;
        Ok(())
    }

    async fn audit_page(&self, after: u64, limit: usize) -> Result<AuditPage> {
        let request = self.request(pb::ListEventsRequest {
            after_seq: after,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        })?;
        let page = self.audit().list_events(request).await?.into_inner();
        let events = page
            .events
            .into_iter()
            .map(|e| AuditEvent::try_from(e).map_err(malformed_response))
            .collect::<Result<Vec<_>>>()?;
        Ok(AuditPage {
            events,
            next_after: (page.next_after_seq > 0).then_some(page.next_after_seq),
        })
    }

    async fn audit_verify(&self) -> Result<AuditVerification> {
        let request = self.request(pb::VerifyLogRequest {})?;
        Ok(self.audit().verify_log(request).await?.into_inner().into())
    }
}
