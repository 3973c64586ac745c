//! The registry behind a trait: aliases and their revisions, pins, manifests, evaluation
//! reports and the audit log, where every mutation and its audit event commit as one
//! transaction.
//!
//! [`Registry`] is what the store needs of a backend; the redb one (`registry.redb` in the data
//! dir) is the default. Any backend must pass [`conformance::run`].

use std::collections::BTreeMap;

use quire_core::{IndexId, Manifest};
use quire_release::outcome::FeedbackRecord;
use quire_release::{
    AliasRevision, AuditDraft, AuditEvent, AuditVerification, CanaryReport, Pin, ReportRecord,
    SampleQuery, SampleRecord,
};

use crate::error::Result;

pub mod conformance;

/// What [`Registry::put_manifest`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Published {
    /// The manifest was recorded, with this audit event.
    Recorded(Box<AuditEvent>),
    /// The index id was recorded already (by an earlier or concurrent build); nothing was
    /// written. The stored record's content digest.
    Exists {
        /// The content digest the registry holds for the id.
        content_digest: String,
    },
}

/// Every stored evaluation report (oldest first), read inside the transaction on demand.
pub type Reports<'a> = &'a dyn Fn() -> Result<Vec<ReportRecord>>;

/// The decision of an alias change, made inside the registry's transaction from the alias's
/// history (oldest first) and, when a gate needs them, the stored reports: the revision to
/// store and its audit event. An error aborts the transaction and nothing is written.
pub type Decide<'a> =
    &'a mut dyn FnMut(&[AliasRevision], Reports<'_>) -> Result<(AliasRevision, AuditDraft)>;

/// Called when a registry learns that an alias changed, or may have (after it reconnected, since
/// notifications sent meanwhile are lost): the caller re-reads what it follows.
pub type OnChange = std::sync::Arc<dyn Fn() + Send + Sync>;

/// A registry backend. Every method that changes something appends exactly one audit event in
/// the same transaction, and either both land or neither does.
pub trait Registry: Send + Sync + std::fmt::Debug {
    /// Every alias revision, grouped per alias, oldest first.
    fn alias_revisions(&self) -> Result<BTreeMap<String, Vec<AliasRevision>>>;

    /// The current (newest) revision of every alias: what a replica polls.
    fn alias_heads(&self) -> Result<BTreeMap<String, AliasRevision>> {
        Ok(self
            .alias_revisions()?
            .into_iter()
            .filter_map(|(name, mut history)| history.pop().map(|r| (name, r)))
            .collect())
    }

    /// Call `on_change` whenever another process commits an alias change, and after every
    /// reconnection, for as long as the registry lives. `false`: this backend cannot notify
    /// (the caller polls alone).
    fn listen(&self, on_change: OnChange) -> Result<bool> {
        let _ = on_change;
        Ok(false)
    }

    /// Every revision of `alias`, oldest first (empty when it does not exist).
    fn alias_history(&self, alias: &str) -> Result<Vec<AliasRevision>>;

    /// Store the revision `decide` makes of `alias`'s history, with its audit event.
    fn commit_alias(&self, alias: &str, decide: Decide<'_>) -> Result<(AliasRevision, AuditEvent)>;

    /// Store `pin`, replacing its holder's earlier pin on the same index.
    fn put_pin(&self, pin: &Pin, draft: AuditDraft) -> Result<AuditEvent>;

    /// Remove `holder`'s pin on `index` (not found is an error); `draft` describes the removal.
    fn remove_pin(
        &self,
        index: &IndexId,
        holder: &str,
        draft: &mut dyn FnMut(&Pin) -> AuditDraft,
    ) -> Result<(Pin, AuditEvent)>;

    /// Every pin, by index and holder.
    fn pins(&self) -> Result<Vec<Pin>>;

    /// Record a newly built index's manifest, if its id has none yet: the first builder wins.
    /// When one is there already nothing is written (no audit event either) and the stored
    /// record's content digest is returned, so a losing builder can tell whether it built the
    /// same bytes.
    fn put_manifest(&self, manifest: &Manifest, draft: AuditDraft) -> Result<Published>;

    /// The recorded manifest of index `id` (the first build's), if any: what a replica
    /// compares a fetched manifest with, since the content digest covers only the file list.
    fn manifest(&self, id: &IndexId) -> Result<Option<Manifest>>;

    /// Mark index `id` as being deleted by GC at `at_us` (microseconds since the epoch), with
    /// its audit event; `None` (nothing written) when it is marked already. Replicas fetch no
    /// marked index, and alias changes refuse one.
    fn mark_deleting(
        &self,
        id: &IndexId,
        at_us: u64,
        draft: AuditDraft,
    ) -> Result<Option<AuditEvent>>;

    /// Every index marked as being deleted, with when it was marked.
    fn deleting(&self) -> Result<BTreeMap<IndexId, u64>>;

    /// Remove the deletion mark of `id` with its audit event: the deletion was called off, or
    /// (`forget`) it is done, and the manifest record goes too, so that a later build of the
    /// id records again. Not marked is an error.
    fn unmark_deleting(&self, id: &IndexId, forget: bool, draft: AuditDraft) -> Result<AuditEvent>;

    /// Store an evaluation report.
    fn put_eval_report(&self, record: &ReportRecord, draft: AuditDraft) -> Result<AuditEvent>;

    /// Every stored report, oldest first (by creation time, then report id).
    fn eval_reports(&self) -> Result<Vec<ReportRecord>>;

    /// Append one audit event on its own.
    fn append_audit(&self, draft: AuditDraft) -> Result<AuditEvent>;

    /// Every audit event in sequence order, with its chain hash.
    fn audit_events(&self) -> Result<Vec<AuditEvent>>;

    /// At most `limit` audit events with seq above `after`, in sequence order (a page of the
    /// log: reads only those events).
    fn audit_page(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>>;

    /// Check the audit chain end to end, and its head.
    fn verify_audit(&self) -> Result<AuditVerification>;

    /// Store sampled requests (one transaction). Not audited: samples are observations of
    /// reads, as the access log is, and the sampler's caps bound how many arrive; the audit log
    /// records changes.
    fn put_samples(&self, samples: &[SampleRecord]) -> Result<()>;

    /// The samples `query` selects ([`SampleQuery::select`]'s order and limit).
    fn samples(&self, query: &SampleQuery) -> Result<Vec<SampleRecord>>;

    /// Delete the samples recorded before `before_us` (microseconds since the epoch): retention.
    /// How many went.
    fn prune_samples(&self, before_us: u64) -> Result<u64>;

    /// Store a canary evaluation report, with its audit event.
    fn put_canary_report(&self, report: &CanaryReport, draft: AuditDraft) -> Result<AuditEvent>;

    /// Stored canary reports (only `alias`'s when given), oldest first (by creation time, then
    /// report id).
    fn canary_reports(&self, alias: Option<&str>) -> Result<Vec<CanaryReport>>;

    /// Delete canary reports made before `before_us` (microseconds since the epoch): retention.
    /// How many went. Not audited: their `canary.report` events stay, naming them.
    fn prune_canary_reports(&self, before_us: u64) -> Result<u64>;

    /// Store feedback records (one transaction). Not audited, like samples: the server's
    /// per-request and hourly bounds limit them.
    fn put_feedback(&self, records: &[FeedbackRecord]) -> Result<()>;

    /// Feedback of `alias` recorded at or after `since_us`, oldest first (by time, then request
    /// id).
    fn feedback(&self, alias: &str, since_us: u64) -> Result<Vec<FeedbackRecord>>;

    /// Delete feedback recorded before `before_us`: retention. How many went.
    fn prune_feedback(&self, before_us: u64) -> Result<u64>;
}
