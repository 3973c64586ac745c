//! The release control plane as a service trait: aliases, shadow reports, pins, GC and the
//! audit log. [`Local`] implements it over the data dir; `Remote` over gRPC.

use quire_store::{
    AliasChange, AliasChangeRequest, AliasRevision, AuditEvent, AuditVerification, GcReport, Pin,
    ShadowReport, parse_duration, percent_to_basis_points,
};

use crate::api::Local;
use crate::error::{Result, ServiceError};

/// Most audit events one page may hold.
pub const MAX_AUDIT_PAGE: usize = 10_000;

/// Audit events per page when a `ListEvents` request names no limit.
pub const DEFAULT_AUDIT_PAGE: usize = 1_000;

/// A page of the audit log.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditPage {
    /// Events in sequence order.
    pub events: Vec<AuditEvent>,
    /// The seq to ask for events after, when the page was full (more may follow).
    pub next_after: Option<u64>,
}

impl AuditPage {
    fn of(events: Vec<AuditEvent>, limit: usize) -> Self {
        let next_after = (events.len() == limit)
            .then(|| events.last().map(|e| e.seq))
            .flatten();
        Self { events, next_after }
    }
}

/// Release operations. Every change takes a reason and is recorded with the caller.
#[allow(async_fn_in_trait)]
pub trait ReleaseApi {
    /// Apply `change` to `alias`, creating revision `r + 1`. Index arguments may be ids or
    /// unique prefixes. `force` overrides a failing quality gate (admins only).
    async fn change_alias(
        &self,
        alias: &str,
        change: AliasChangeRequest,
        reason: &str,
        force: bool,
    ) -> Result<AliasRevision>;
    /// The current revision of `alias`.
    async fn alias(&self, alias: &str) -> Result<AliasRevision>;
    /// Every revision of `alias`, oldest first.
    async fn alias_history(&self, alias: &str) -> Result<Vec<AliasRevision>>;
    /// The current revision of every alias.
    async fn aliases(&self) -> Result<Vec<AliasRevision>>;
    /// Shadow comparison statistics of `alias` since its shadow began.
    async fn shadow_report(&self, alias: &str) -> Result<ShadowReport>;
    /// Pin an index for `holder`, optionally lapsing after `expires` (e.g. `7d`).
    async fn pin(
        &self,
        target: &str,
        holder: &str,
        expires: Option<&str>,
        reason: &str,
    ) -> Result<Pin>;
    /// Remove `holder`'s pin.
    async fn unpin(&self, target: &str, holder: &str, reason: &str) -> Result<Pin>;
    /// Every pin.
    async fn pins(&self) -> Result<Vec<Pin>>;
    /// Delete unreferenced indices (or report what would go).
    async fn gc(&self, dry_run: bool, reason: &str) -> Result<GcReport>;
    /// Delete one index; refused while it is live.
    async fn delete_index(&self, target: &str, reason: &str) -> Result<()>;
    /// At most `limit` (1 to [`MAX_AUDIT_PAGE`]) audit events with seq above `after`, oldest
    /// first.
    async fn audit_page(&self, after: u64, limit: usize) -> Result<AuditPage>;
    /// The whole audit log, oldest first, read a page at a time.
    async fn audit_log(&self) -> Result<Vec<AuditEvent>> {
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let page = self.audit_page(after, MAX_AUDIT_PAGE).await?;
            events.extend(page.events);
            match page.next_after {
                Some(next) => after = next,
                None => return Ok(events),
            }
        }
    }
    /// Check the audit log's hash chain.
    async fn audit_verify(&self) -> Result<AuditVerification>;
}

impl Local {
    fn to_change(&self, request: AliasChangeRequest) -> Result<AliasChange> {
        Ok(match request {
            AliasChangeRequest::Set(t) => AliasChange::Set(self.store().resolve_index(&t)?),
            AliasChangeRequest::Canary(t, p) => {
                AliasChange::Canary(self.store().resolve_index(&t)?, percent_to_basis_points(p)?)
            }
            AliasChangeRequest::ClearCanary => AliasChange::ClearCanary,
            AliasChangeRequest::Shadow(t) => AliasChange::Shadow(self.store().resolve_index(&t)?),
            AliasChangeRequest::ClearShadow => AliasChange::ClearShadow,
            AliasChangeRequest::Promote => AliasChange::Promote,
            AliasChangeRequest::Rollback(r) => AliasChange::Rollback(r),
            AliasChangeRequest::ClearGate => AliasChange::ClearPolicy,
            AliasChangeRequest::AutoRollback(p) => AliasChange::SetAutoRollback(p),
        })
    }
}

impl ReleaseApi for Local {
    async fn change_alias(
        &self,
        alias: &str,
        change: AliasChangeRequest,
        reason: &str,
        force: bool,
    ) -> Result<AliasRevision> {
        let (alias, reason) = (alias.to_owned(), reason.to_owned());
        self.blocking(move |l| {
            let change = l.to_change(change)?;
            Ok(l.store()
                .change_alias_with(&alias, &change, l.actor(), &reason, force)?)
        })
        .await
    }

    async fn alias(&self, alias: &str) -> Result<AliasRevision> {
        Ok(self.store().alias(alias)?)
    }

    async fn alias_history(&self, alias: &str) -> Result<Vec<AliasRevision>> {
        let alias = alias.to_owned();
        self.blocking(move |l| Ok(l.store().alias_history(&alias)?))
            .await
    }

    async fn aliases(&self) -> Result<Vec<AliasRevision>> {
        Ok(self.store().aliases())
    }

    async fn shadow_report(&self, alias: &str) -> Result<ShadowReport> {
        self.store().alias(alias)?;
        Ok(self.shadows().report(alias))
    }

    async fn pin(
        &self,
        target: &str,
        holder: &str,
        expires: Option<&str>,
        reason: &str,
    ) -> Result<Pin> {
        let expires = expires.map(parse_duration).transpose()?;
        let (target, holder, reason) = (target.to_owned(), holder.to_owned(), reason.to_owned());
        self.blocking(move |l| {
            let id = l.store().resolve_index(&target)?;
            Ok(l.store().pin(&id, &holder, expires, l.actor(), &reason)?)
        })
        .await
    }

    async fn unpin(&self, target: &str, holder: &str, reason: &str) -> Result<Pin> {
        let (target, holder, reason) = (target.to_owned(), holder.to_owned(), reason.to_owned());
        self.blocking(move |l| {
            let id = l.store().resolve_index(&target)?;
            Ok(l.store().unpin(&id, &holder, l.actor(), &reason)?)
        })
        .await
    }

    async fn pins(&self) -> Result<Vec<Pin>> {
        self.blocking(|l| Ok(l.store().pins()?)).await
    }

    async fn gc(&self, dry_run: bool, reason: &str) -> Result<GcReport> {
        let reason = reason.to_owned();
        self.blocking(move |l| Ok(l.store().gc(dry_run, l.actor(), &reason)?))
            .await
    }

    async fn delete_index(&self, target: &str, reason: &str) -> Result<()> {
        let (target, reason) = (target.to_owned(), reason.to_owned());
        self.blocking(move |l| {
            let id = l.store().resolve_index(&target)?;
            Ok(l.store().delete_index(&id, l.actor(), &reason)?)
        })
        .await
    }

    async fn audit_page(&self, after: u64, limit: usize) -> Result<AuditPage> {
        if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
            return Err(ServiceError::InvalidArgument(format!(
                "limit: {limit} audit events per page; 1 to {MAX_AUDIT_PAGE} are allowed"
            )));
        }
        let events = self
            .blocking(move |l| Ok(l.store().audit_page(after, limit)?))
            .await?;
        Ok(AuditPage::of(events, limit))
    }

    async fn audit_verify(&self) -> Result<AuditVerification> {
        self.blocking(|l| Ok(l.store().audit_verify()?)).await
    }
}
