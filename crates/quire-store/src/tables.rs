//! The registry's redb tables and how values are stored in them: the layer under both the
//! registry and the audit log.

use std::path::Path;

use redb::TableDefinition;

use crate::error::{Result, StoreError};

/// (alias, revision) -> JSON [`quire_release::AliasRevision`].
pub(crate) const ALIAS_REVISIONS: TableDefinition<'_, (&str, u64), &[u8]> =
    TableDefinition::new("alias_revisions");
/// (index id, holder) -> JSON [`quire_release::Pin`].
pub(crate) const PINS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("pins");
/// seq -> 32-byte chain hash followed by the canonical event bytes.
pub(crate) const AUDIT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit");
/// index id -> manifest JSON.
pub(crate) const MANIFESTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("manifests");
/// report id -> evaluation report JSON.
pub(crate) const EVAL_REPORTS: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("eval_reports");
/// (alias, microseconds since the epoch, request id) -> JSON [`quire_release::SampleRecord`].
pub(crate) const SAMPLES: TableDefinition<'_, (&str, u64, &str), &[u8]> =
    TableDefinition::new("samples");
/// (alias, microseconds since the epoch, report id) -> JSON [`quire_release::CanaryReport`].
pub(crate) const CANARY_REPORTS: TableDefinition<'_, (&str, u64, &str), &[u8]> =
    TableDefinition::new("canary_reports");
/// (alias, microseconds since the epoch, request id) -> JSON
/// [`quire_release::outcome::FeedbackRecord`].
pub(crate) const FEEDBACK: TableDefinition<'_, (&str, u64, &str), &[u8]> =
    TableDefinition::new("feedback");
/// index id -> microseconds since the epoch when GC marked it for deletion.
pub(crate) const DELETING: TableDefinition<'_, &str, u64> = TableDefinition::new("deleting");
/// Small named values: `schema`, `audit_head` (seq as 8 LE bytes, then the 32-byte hash).
pub(crate) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

/// Turn any redb error into a store error naming the registry file.
pub(crate) fn db_err(path: &Path) -> impl Fn(redb::Error) -> StoreError + '_ {
    move |e| StoreError::Registry {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Decode one JSON value stored in the registry.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Registry {
        path: path.to_path_buf(),
        reason: format!("undecodable record: {e}"),
    })
}

/// Encode one value for the registry; a value that does not serialise is an error, never
/// empty bytes.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Encode {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}
