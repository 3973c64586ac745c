//! Retention: pins that keep an index from garbage collection, and what a collection did.

use std::collections::BTreeMap;

use quire_core::{IndexId, SnapshotId};
use serde::{Deserialize, Serialize};

/// A hold on an index that keeps GC away from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The pinned index.
    pub index_id: IndexId,
    /// Who holds it, e.g. an evaluation run or a team.
    pub holder: String,
    /// When it was pinned (RFC 3339).
    pub created: String,
    /// When it lapses (RFC 3339); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Who pinned it.
    pub actor: String,
    /// Why.
    pub reason: String,
}

impl Pin {
    /// Whether the pin still holds at `now`.
    pub fn is_live(&self, now: jiff::Timestamp) -> bool {
        self.expires
            .as_deref()
            .and_then(|e| e.parse::<jiff::Timestamp>().ok())
            .is_none_or(|e| e > now)
    }
}

/// An upload GC deleted (or, dry, would delete): one build of an index whose objects reached
/// the shared store without its commit marker, and whose newest object is older than the
/// keep-fresh window (a builder stopped mid-upload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeletedUpload {
    /// The index the upload was of.
    pub index_id: IndexId,
    /// The build's content digest (64 lowercase hex characters).
    pub content_digest: String,
    /// How many objects of it there were.
    pub objects: u64,
}

/// The shared embedding cache packs of one namespace (one model at one precision) GC deleted
/// (or, dry, would delete): no index in the store uses that model at that precision any more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeletedPacks {
    /// The namespace: the model's digest, hashed with the precision unless it is fp32 (64
    /// lowercase hex characters; a stray folder of the cache is reported by its name).
    pub namespace: String,
    /// How many packs of it went.
    pub packs: u64,
}

/// What GC did (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Whether nothing was deleted.
    pub dry_run: bool,
    /// Indices deleted (or to delete).
    pub deleted_indexes: Vec<IndexId>,
    /// Snapshots deleted (or to delete) because every index built from them went.
    pub deleted_snapshots: Vec<SnapshotId>,
    /// Abandoned uploads in the shared store deleted (or to delete); none without one.
    pub deleted_uploads: Vec<DeletedUpload>,
    /// Shared embedding cache packs deleted (or to delete), by namespace; none without a
    /// shared store.
    pub deleted_packs: Vec<DeletedPacks>,
    /// Indices kept, with why.
    pub kept: BTreeMap<IndexId, Vec<String>>,
}
