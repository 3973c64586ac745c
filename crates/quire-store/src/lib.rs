//! The quire data dir: corpus import, snapshots, and atomic publishing of indices.
//!
//! - [`Store`]: an open, locked data dir. [`Store::import`] reads a corpus
//!   ([`CorpusFormat`]: quire JSONL, BEIR, or a directory with `quire-acl.toml`) into a
//!   canonical, hash-addressed snapshot; [`Store::build`] builds an index from a snapshot and a
//!   spec in `tmp/`, fsyncs it, makes it read-only and renames it into `indexes/`.
//! - [`RetrievalService`]: answers queries against an index id (or unique prefix); indices
//!   are opened once ([`Store::open_index`]) and shared.
//! - [`Store::verify`] and [`Store::rebuild_check`] prove an index is what its manifest says
//!   and that it can be reproduced from what the data dir holds.
//!
//! - Releases: [`Store::change_alias`] applies an [`AliasChange`] as a new [`AliasRevision`]
//!   (primary, canary, shadow); [`Store::resolve_target`] routes `ALIAS`, `ALIAS@REV` or an id
//!   ([`release::route`]); [`Store::pin`], [`Store::gc`] and [`Store::delete_index`] never
//!   remove a live index; [`audit`] is the hash-chained log every mutation appends to, in the
//!   same transaction. All of it goes through the [`Registry`] trait (redb's `registry.redb`
//!   by default); [`registry::conformance::run`] is the suite every backend must pass. The pure release logic (alias changes, routing,
//!   gate checks, the chain's hashing) is quire-release's; its types are re-exported here.
//! - Artifacts can be shared between machines through an [`ArtifactStore`] (a directory, or
//!   S3 through quire-store-s3): [`Store::with_artifacts`]; builds and imports publish there,
//!   and an index missing from the data dir is fetched into it, checked, on first use.
//! - Open indices live in an LRU cache with a memory budget ([`CachePolicy`]); alias arms are
//!   never closed.
//!
//! Nothing refused is ever half-stored: imports and builds write to scratch space and publish
//! with a single rename; a killed process leaves only `tmp/` debris, cleared by the next writer.

mod access;
mod acl_rules;
pub mod artifacts;
pub mod audit;
mod cache;
mod error;
pub mod gate;
pub mod gc;
mod gc_shared;
pub mod import;
mod redb_registry;
pub mod registry;
pub mod release;
mod samples;
pub mod snapshot;
mod store;
mod store_canary;
mod tables;

pub use artifacts::{ArtifactStore, Created, DirStore, Key, Listed};
pub use audit::{AuditDraft, AuditEvent, AuditVerification};
pub use cache::CachePolicy;
pub use error::{Result, StoreError};
pub use gate::{GatePolicy, Headline, ReportRecord};
pub use gc::{DeletedPacks, DeletedUpload, GcReport, Pin, parse_duration};
pub use import::CorpusFormat;
pub use quire_core::outcome::{BuildOutcome, IndexInfo, IndexSummary, RebuildCheck, VerifyReport};
pub use quire_release::canary::{self, CanaryEvalRequest, CandidateArm};
pub use quire_release::outcome::{self, AliasReport, FeedbackLabel, FeedbackRecord};
pub use quire_release::{
    CanaryOutcome, CanaryReport, Distribution, Intent, RollbackPolicy, SampleListing, SampleQuery,
    SampleRecord, SampledQuery, ShadowReport,
};
pub use redb_registry::REGISTRY_FILE;
pub use registry::{OnChange, Published, Registry};
pub use release::{
    AliasChange, AliasChangeRequest, AliasRevision, AliasState, Canary, Resolved, Via,
    percent_to_basis_points,
};
pub use snapshot::SnapshotInfo;
pub use store::{
    Access, DEFAULT_POLL_INTERVAL, LOCK_FILE, MIN_PREFIX_HEX, RetrievalService, Store, StoreOptions,
};
pub use store::{FollowReport, OnFetch, Upload, Waiting};

/// The data dir's redb registry (`registry.redb` under `root`) on its own, without the rest of
/// the store: for benchmarks, and tools that read or copy a registry. The caller must hold the
/// data dir the way `access` says (see [`Store::open`]).
pub fn open_redb_registry(root: &std::path::Path, access: Access) -> Result<Box<dyn Registry>> {
    Ok(Box::new(redb_registry::RedbRegistry::open(root, access)?))
}
