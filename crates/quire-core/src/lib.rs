//! Domain types of quire, free of I/O and of any transport.
//!
//! - [`Document`] and its canonical JSON form ([`document`]); [`Acl`], [`Principal`] and
//!   [`Reader`] for document-level permissions ([`acl`]).
//! - Content-derived ids, [`SnapshotId`] and [`IndexId`], and the hashing conventions behind
//!   them ([`ids`]).
//! - [`BuildSpec`], the validated, canonically serialised build spec ([`spec`]).
//! - Deterministic chunking into byte ranges with stable ids ([`chunk`]).
//! - The index [`Manifest`] and the content digest over an artifact's files ([`manifest`]).
//! - Retrieval's [`Query`] and [`Response`] (hits, [`Lineage`], the alias [`Arm`]) ([`query`]),
//!   and what the store reports: [`SnapshotInfo`], [`IndexSummary`], [`BuildOutcome`],
//!   [`Verification`], [`RebuildCheck`] ([`outcome`]). The wire crate converts exactly these.
//!
//! Everything that is hashed is serialised canonically: struct fields in declaration order, maps
//! and sets sorted, timestamps in UTC.

pub mod acl;
pub mod chunk;
pub mod document;
pub mod error;
pub mod ids;
pub mod manifest;
pub mod outcome;
pub mod query;
pub mod spec;

pub use acl::{Acl, Principal, Reader};
pub use document::{Document, JsonDialect};
pub use error::{CoreError, Result};
pub use ids::{FORMAT_VERSION, IndexId, SnapshotId};
pub use manifest::{
    BuildInfo, Counts, EmbedCacheStats, FileEntry, Manifest, ModelInfo, StageRecord, Versions,
};
pub use outcome::{
    BuildOutcome, CorpusFormat, IndexInfo, IndexSummary, RebuildCheck, SnapshotInfo, Verification,
    VerifyReport,
};
pub use query::{Arm, Hit, Lineage, Mode, Query, Response, RetrieverHit, Timings};
pub use spec::{BuildSpec, Chunking};
