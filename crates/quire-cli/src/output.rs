//! How a command ends and how it prints: one value serialised for `--json`, or rendered as
//! text.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use quire_core::manifest::EmbedCacheStats;
use quire_core::{IndexId, SnapshotId};
use serde::Serialize;

// Output structs list their fields in alphabetical order: `--json` printed them from JSON maps,
// which serde_json sorts, and the bytes stay the same.

/// `quire build --json`.
#[derive(Debug, Serialize)]
pub(crate) struct BuildOutput<'a> {
    /// The index's content digest.
    pub content_digest: &'a str,
    /// Documents, chunks and vectors, as a JSON map (keys sorted, as before).
    pub counts: serde_json::Value,
    /// Embedding cache hits and misses of this build.
    pub embed_cache: EmbedCacheStats,
    /// The index id.
    pub index_id: &'a IndexId,
    /// Whether the index existed and nothing was built.
    pub reused: bool,
    /// The snapshot it was built from.
    pub snapshot_id: &'a SnapshotId,
    /// Stage timings.
    pub timings_ms: &'a BTreeMap<String, u64>,
    /// Documents nobody may read (no ACL and no `default_acl`).
    pub unreadable_documents: u64,
}

/// `quire token new --json`.
#[derive(Debug, Serialize)]
pub(crate) struct TokenOutput<'a> {
    /// The hash to put in server.toml.
    pub blake3: &'a str,
    /// The token itself (shown once, never stored).
    pub token: &'a str,
}

/// `quire delete --json`.
#[derive(Debug, Serialize)]
pub(crate) struct DeleteOutput<'a> {
    /// The index deleted, as given.
    pub deleted: &'a str,
}

/// How a command ended, when it did not fail outright.
pub enum Outcome {
    /// Success.
    Ok,
    /// A check ran and did not pass.
    CheckFailed,
}

/// Print `value` as pretty JSON (`json`), or as `text` renders it.
pub(crate) fn emit<T: Serialize>(
    out: &mut dyn Write,
    json: bool,
    value: &T,
    text: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, value)?;
        writeln!(out)?;
    } else {
        text(out)?;
    }
    Ok(())
}
