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

/// What GC did (or, dry, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Whether nothing was deleted.
    pub dry_run: bool,
    /// Indices deleted (or to delete).
    pub deleted_indexes: Vec<IndexId>,
    /// Snapshots deleted (or to delete) because every index built from them went.
    pub deleted_snapshots: Vec<SnapshotId>,
    /// Indices kept, with why.
    pub kept: BTreeMap<IndexId, Vec<String>>,
}
