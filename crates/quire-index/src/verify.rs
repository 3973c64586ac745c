//! Checking an index artifact against its manifest.

use std::collections::BTreeMap;
use std::path::Path;

use quire_core::manifest::content_digest;
use quire_core::{FORMAT_VERSION, IndexId, Manifest};

use crate::error::{IndexError, IoContext, Result};
use crate::files::{MANIFEST_FILE, artifact_files};

pub use quire_core::outcome::Verification;

/// Read and parse `dir/manifest.json`.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).at(&path)?;
    serde_json::from_slice(&bytes).map_err(|e| IndexError::Corrupt {
        file: MANIFEST_FILE.into(),
        reason: e.to_string(),
    })
}

/// Why `manifest`'s index id does not follow from its snapshot, spec and format, if it does
/// not. An index is checked against the format it was built in, if this quire reads it.
pub fn identity_problem(manifest: &Manifest) -> Option<String> {
    let format = Some(manifest.versions.format)
        .filter(|f| crate::READABLE_FORMATS.contains(f))
        .unwrap_or(FORMAT_VERSION);
    let derived = IndexId::derive(
        &manifest.snapshot_id,
        &manifest.spec.canonical_json(),
        format,
    );
    (derived != manifest.index_id)
        .then(|| format!("index_id does not follow from snapshot_id and spec (expected {derived})"))
}

/// Recompute every file hash and the content digest of `dir` and compare with the manifest;
/// also check that the index id follows from the manifest's snapshot, spec and format.
pub fn verify_dir(dir: &Path) -> Result<Verification> {
    let manifest = read_manifest(dir)?;
    let files = artifact_files(dir)?;
    let mut problems = Vec::new();
    let expected: BTreeMap<_, _> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let actual: BTreeMap<_, _> = files.iter().map(|f| (f.path.as_str(), f)).collect();
    for (path, want) in &expected {
        match actual.get(path) {
            None => problems.push(format!("{path}: missing")),
            Some(got) if got.blake3 != want.blake3 => problems.push(format!(
                "{path}: content differs (blake3 {} != {})",
                got.blake3, want.blake3
            )),
            Some(_) => {}
        }
    }
    for path in actual.keys().filter(|p| !expected.contains_key(*p)) {
        problems.push(format!("{path}: not in the manifest"));
    }
    let recomputed = content_digest(&files);
    if content_digest(&manifest.files) != manifest.content_digest {
        problems.push(format!(
            "{MANIFEST_FILE}: content_digest does not match its own file list"
        ));
    }
    if let Some(problem) = identity_problem(&manifest) {
        problems.push(format!("{MANIFEST_FILE}: {problem}"));
    }
    if dir.file_name().and_then(|n| n.to_str()) != Some(manifest.index_id.as_str()) {
        problems.push(format!(
            "{MANIFEST_FILE}: index_id {} does not match the directory name",
            manifest.index_id
        ));
    }
    Ok(Verification {
        ok: problems.is_empty(),
        content_digest: recomputed,
        problems,
    })
}
