//! Thin gRPC adapters of the release and audit services.

use quire_proto::pb;
use quire_proto::release::ChangeAliasParams;
use tonic::{Request, Response, Status};

use quire_store::AliasRevision;

use crate::auth::{Caller, Role};
use crate::denials::Denial;
use crate::grpc::{Grpc, Server, invalid_request, reason};
use crate::release_api::{DEFAULT_AUDIT_PAGE, ReleaseApi};

impl Server {
    /// An alias change as `caller`; overriding a quality gate (`force`) needs Admin, and a
    /// refused override is audited.
    pub(crate) async fn change_alias(
        &self,
        caller: &Caller,
        p: ChangeAliasParams,
    ) -> crate::Result<AliasRevision> {
        if p.force && caller.role < Role::Admin {
            let message = format!(
                "token `{}` has role {:?}; overriding a quality gate (force) needs Admin",
                caller.name, caller.role
            );
            let evidence = serde_json::json!({
                "rpc": "ChangeAlias",
                "message": message,
                "needed": "admin",
                "force": true,
            });
            self.audit_denied(Denial {
                actor: caller.name.clone(),
                action: "auth.denied",
                kind: "ChangeAlias",
                target: p.alias.clone(),
                evidence,
            })
            .await;
            return Err(crate::ServiceError::PermissionDenied(message));
        }
        let local = self.local.as_actor(&caller.name);
        local
            .change_alias(&p.alias, p.change, &p.reason, p.force)
            .await
    }
}

#[tonic::async_trait]
impl pb::release_service_server::ReleaseService for Grpc {
    async fn change_alias(
        &self,
        request: Request<pb::ChangeAliasRequest>,
    ) -> Result<Response<pb::AliasRevision>, Status> {
        self.unary(
            "ChangeAlias",
            Role::Releaser,
            request,
            |s, caller, m| async move {
                let p = ChangeAliasParams::try_from(m).map_err(invalid_request)?;
                Ok(s.change_alias(&caller, p).await?.into())
            },
        )
        .await
    }

    async fn get_alias(
        &self,
        request: Request<pb::GetAliasRequest>,
    ) -> Result<Response<pb::AliasRevision>, Status> {
        self.unary("GetAlias", Role::Reader, request, |s, _, m| async move {
            Ok(s.local.alias(&m.alias).await?.into())
        })
        .await
    }

    async fn alias_history(
        &self,
        request: Request<pb::GetAliasRequest>,
    ) -> Result<Response<pb::AliasHistoryResponse>, Status> {
        self.unary(
            "AliasHistory",
            Role::Reader,
            request,
            |s, _, m| async move {
                Ok(pb::AliasHistoryResponse {
                    revisions: s
                        .local
                        .alias_history(&m.alias)
                        .await?
                        .into_iter()
                        .map(Into::into)
                        .collect(),
                })
            },
        )
        .await
    }

    async fn list_aliases(
        &self,
        request: Request<pb::ListAliasesRequest>,
    ) -> Result<Response<pb::AliasHistoryResponse>, Status> {
        self.unary("ListAliases", Role::Reader, request, |s, _, _| async move {
            Ok(pb::AliasHistoryResponse {
                revisions: s
                    .local
                    .aliases()
                    .await?
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            })
        })
        .await
    }

    async fn shadow_report(
        &self,
        request: Request<pb::GetAliasRequest>,
    ) -> Result<Response<pb::ShadowReportResponse>, Status> {
        self.unary(
            "ShadowReport",
            Role::Reader,
            request,
            |s, _, m| async move { Ok(s.local.shadow_report(&m.alias).await?.into()) },
        )
        .await
    }

    async fn pin(&self, request: Request<pb::PinRequest>) -> Result<Response<pb::PinInfo>, Status> {
        self.unary("Pin", Role::Releaser, request, |s, caller, m| async move {
            let expires = Some(m.expires.as_str()).filter(|e| !e.is_empty());
            let local = s.local.as_actor(&caller.name);
            Ok(local
                .pin(&m.index, &m.holder, expires, &reason(m.reason)?)
                .await?
                .into())
        })
        .await
    }

    async fn unpin(
        &self,
        request: Request<pb::UnpinRequest>,
    ) -> Result<Response<pb::PinInfo>, Status> {
        self.unary(
            "Unpin",
            Role::Releaser,
            request,
            |s, caller, m| async move {
                let local = s.local.as_actor(&caller.name);
                Ok(local
                    .unpin(&m.index, &m.holder, &reason(m.reason)?)
                    .await?
                    .into())
            },
        )
        .await
    }

    async fn list_pins(
        &self,
        request: Request<pb::ListPinsRequest>,
    ) -> Result<Response<pb::ListPinsResponse>, Status> {
        self.unary("ListPins", Role::Reader, request, |s, _, _| async move {
            Ok(pb::ListPinsResponse {
                pins: s.local.pins().await?.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    async fn collect_garbage(
        &self,
        request: Request<pb::GcRequest>,
    ) -> Result<Response<pb::GcResponse>, Status> {
        self.unary(
            "CollectGarbage",
            Role::Releaser,
            request,
            |s, caller, m| async move {
                let local = s.local.as_actor(&caller.name);
                let why = if m.dry_run && m.reason.trim().is_empty() {
                    "dry run".to_owned()
                } else {
                    reason(m.reason)?
                };
                Ok(local.gc(m.dry_run, &why).await?.into())
            },
        )
        .await
    }

    async fn delete_index(
        &self,
        request: Request<pb::DeleteIndexRequest>,
    ) -> Result<Response<pb::DeleteIndexResponse>, Status> {
        self.unary(
            "DeleteIndex",
            Role::Admin,
            request,
            |s, caller, m| async move {
                let local = s.local.as_actor(&caller.name);
                local.delete_index(&m.index, &reason(m.reason)?).await?;
                Ok(pb::DeleteIndexResponse {})
            },
        )
        .await
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for Grpc {
    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        self.unary(
            "ListEvents",
            Role::Releaser,
            request,
            |s, _, m| async move {
                let limit = match m.limit {
                    0 => DEFAULT_AUDIT_PAGE,
                    n => usize::try_from(n).unwrap_or(usize::MAX),
                };
                let page = s.local.audit_page(m.after_seq, limit).await?;
                Ok(pb::ListEventsResponse {
                    events: page.events.into_iter().map(Into::into).collect(),
                    next_after_seq: page.next_after.unwrap_or(0),
                })
            },
        )
        .await
    }

    async fn verify_log(
        &self,
        request: Request<pb::VerifyLogRequest>,
    ) -> Result<Response<pb::VerifyLogResponse>, Status> {
        self.unary("VerifyLog", Role::Releaser, request, |s, _, _| async move {
            Ok(s.local.audit_verify().await?.into())
        })
        .await
    }
}
