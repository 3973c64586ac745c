//! Release logic of quire, free of I/O: what a registry stores and how it decides.
//!
//! - [`AliasState`], [`AliasRevision`] and [`AliasChange::apply`], the pure function from an
//!   alias's history to its next state ([`alias`]).
//! - Canary routing by the blake3 bucket of a routing key ([`route`], [`Resolved`]) ([`routing`]).
//! - Quality gates: [`GatePolicy`] and [`gate::check`], a pure function of (policy, candidate
//!   report, primary report) ([`gate`]).
//! - The audit log's [`AuditEvent`] in its canonical form, the chain hash and
//!   [`audit::verify_chain`] over stored records ([`audit`]).
//! - Canary evaluation reports and the auto-rollback policy ([`CanaryReport`],
//!   [`RollbackPolicy`]) ([`canary`]).
//! - Feedback on answered requests and the per-arm cost report ([`outcome`]).
//! - Sampled production queries ([`SampleRecord`], [`Intent`]) ([`sampling`]).
//! - Retention [`Pin`]s and what GC did ([`GcReport`]); shadow comparison reports
//!   ([`ShadowReport`]).
//!
//! quire-store commits these decisions to its registry; quire-proto converts these types; both
//! link this crate without linking the engine.

pub mod alias;
pub mod audit;
pub mod canary;
mod error;
pub mod gate;
pub mod outcome;
pub mod retention;
pub mod routing;
pub mod sampling;
pub mod shadow;
pub mod verdict;

pub use alias::{
    AliasChange, AliasChangeRequest, AliasRevision, AliasState, Canary, check_alias_name,
    percent_to_basis_points,
};
pub use audit::{AuditDraft, AuditEvent, AuditVerification};
pub use canary::{CanaryReport, RollbackPolicy};
pub use error::{ReleaseError, Result};
pub use gate::{GatePolicy, Headline, ReportRecord};
pub use retention::{DeletedPacks, DeletedUpload, GcReport, Pin};
pub use routing::{BUCKETS, Resolved, Via, bucket, route};
pub use sampling::{Intent, SampleListing, SampleQuery, SampleRecord, SampledQuery, StepMicros};
pub use shadow::{Distribution, ShadowReport};
pub use verdict::CanaryOutcome;
