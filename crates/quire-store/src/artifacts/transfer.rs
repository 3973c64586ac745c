//! Moving snapshots and indices between a data dir and an [`ArtifactStore`], with the commit
//! protocol (every file first, the commit marker last and create-only) and the checks (every
//! byte hashed as it streams, the content digest recomputed) in one place for every backend.
//!
//! Fetches write into a scratch directory the caller names and then publishes with one rename;
//! on any error the scratch directory is removed, so nothing partial is ever left.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use quire_core::ids::{context, hasher};
use quire_core::manifest::content_digest;
use quire_core::{FileEntry, IndexId, Manifest, SnapshotId};
use quire_index::MANIFEST_FILE;

use super::{ArtifactStore, Created, Key};
use crate::error::{IoContext, Result, StoreError};
use crate::snapshot::{DOCUMENTS_FILE, SNAPSHOT_FILE, SnapshotInfo};

/// The most a commit marker (a manifest, a snapshot description) may hold when fetched.
const MAX_MARKER_BYTES: u64 = 16 << 20;
/// Bytes copied per read while streaming a file.
const BUFFER_BYTES: usize = 1 << 20;

/// `key` does not check: refused.
fn refused(store: &dyn ArtifactStore, key: &Key, reason: impl Into<String>) -> StoreError {
    StoreError::ArtifactRefused {
        store: store.location().to_owned(),
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Reading `key` failed (the store went away, timed out).
fn unavailable(store: &dyn ArtifactStore, key: &Key, reason: impl Into<String>) -> StoreError {
    StoreError::Artifact {
        store: store.location().to_owned(),
        key: key.to_string(),
        reason: reason.into(),
    }
}

fn key_in(store: &dyn ArtifactStore, base: &Key, rel: &str) -> Result<Key> {
    base.join(rel).map_err(|e| refused(store, base, e))
}

/// Upload the published index in `dir`: every file the manifest lists, each hashed as it is
/// read and compared with the manifest, then `manifest.json` create-only. Returns the manifest
/// and whether this call committed it ([`Created::Exists`]: that build was there already, and
/// nothing was uploaded).
pub fn upload_index(store: &dyn ArtifactStore, dir: &Path) -> Result<(Manifest, Created)> {
    upload_index_then(store, dir, |_| Ok(()))
}

/// [`upload_index`], running `before_commit` between the last file and the commit marker
/// (while the store shows an upload in progress, which GC does not collect around).
pub fn upload_index_then(
    store: &dyn ArtifactStore,
    dir: &Path,
    before_commit: impl FnOnce(&Manifest) -> Result<()>,
) -> Result<(Manifest, Created)> {
    let path = dir.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).at(&path)?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        id: path.display().to_string(),
        problems: e.to_string(),
    })?;
    let base = Key::index_build(&manifest.index_id, &manifest.content_digest)
        .map_err(|e| refused(store, &Key::index(&manifest.index_id), e))?;
    let marker = key_in(store, &base, MANIFEST_FILE)?;
    if store.get(&marker)?.is_some() {
        return Ok((manifest, Created::Exists));
    }
    for entry in &manifest.files {
        upload_file(store, &key_in(store, &base, &entry.path)?, dir, entry)?;
    }
    before_commit(&manifest)?;
    let created = store.put_new(&marker, &bytes)?;
    if created == Created::Created {
        restore_missing(store, &base, dir, &manifest)?;
    }
    Ok((manifest, created))
}

/// After committing `manifest` at `base`: upload again every file the store no longer holds.
/// GC deletes an upload whose newest object is older than its freshness window by the store's
/// clock (abandoned, it judges); an upload that stalled that long and then committed gets its
/// files back here.
fn restore_missing(
    store: &dyn ArtifactStore,
    base: &Key,
    dir: &Path,
    manifest: &Manifest,
) -> Result<()> {
    let present: std::collections::BTreeSet<Key> = store.list(base)?.into_iter().collect();
    for entry in &manifest.files {
        let key = key_in(store, base, &entry.path)?;
        if !present.contains(&key) {
            tracing::warn!(%key, "deleted while the upload stalled; uploaded again");
            upload_file(store, &key, dir, entry)?;
        }
    }
    Ok(())
}

/// Upload one file of an artifact, checking it against its manifest entry as it streams.
fn upload_file(store: &dyn ArtifactStore, key: &Key, dir: &Path, entry: &FileEntry) -> Result<()> {
    let path = dir.join(&entry.path);
    let file = File::open(&path).at(&path)?;
    let mut reader = Hashing::new(file);
    store.put(key, &mut reader, entry.bytes)?;
    let (bytes, hash) = reader.finish();
    let blake3 = hash.to_hex().to_string();
    if bytes != entry.bytes || blake3 != entry.blake3 {
        return Err(StoreError::Corrupt {
            id: path.display().to_string(),
            problems: format!(
                "{} bytes with blake3 {blake3}, the manifest says {} bytes with {}; not published",
                bytes, entry.bytes, entry.blake3
            ),
        });
    }
    Ok(())
}

/// Upload the stored snapshot in `dir`: `documents.jsonl` (its hash checked against the id as
/// it streams), then `snapshot.json` create-only.
pub fn upload_snapshot(store: &dyn ArtifactStore, dir: &Path, id: &SnapshotId) -> Result<Created> {
    let base = Key::snapshot(id);
    let marker = key_in(store, &base, SNAPSHOT_FILE)?;
    if store.get(&marker)?.is_some() {
        return Ok(Created::Exists);
    }
    let path = dir.join(DOCUMENTS_FILE);
    let file = File::open(&path).at(&path)?;
    let len = file.metadata().at(&path)?.len();
    let mut reader = Hashing::with_context(file, context::SNAPSHOT);
    store.put(&key_in(store, &base, DOCUMENTS_FILE)?, &mut reader, len)?;
    if SnapshotId::from_hash(reader.finish().1) != *id {
        return Err(StoreError::Corrupt {
            id: path.display().to_string(),
            problems: format!("does not hash to {id}; not published"),
        });
    }
    let info = dir.join(SNAPSHOT_FILE);
    store.put_new(&marker, &std::fs::read(&info).at(&info)?)
}

/// Fetch build `digest` of index `id` into `scratch` (created here): the manifest first, checked
/// (its id, its digest, its file list's digest, its id's derivation), then every file it lists,
/// streamed to disk, hashed on the fly, sized and fsynced; the content digest is recomputed
/// from what arrived. Any difference refuses the fetch naming the object, and `scratch` is
/// removed. `None`: the store holds no committed build of that digest.
pub fn fetch_index(
    store: &dyn ArtifactStore,
    id: &IndexId,
    digest: &str,
    scratch: &Path,
) -> Result<Option<Manifest>> {
    into_scratch(scratch, || fetch_index_files(store, id, digest, scratch))
}

/// Run `fetch` into a new `scratch` directory, removing it unless `fetch` delivered.
fn into_scratch<T>(scratch: &Path, fetch: impl FnOnce() -> Result<Option<T>>) -> Result<Option<T>> {
    std::fs::create_dir_all(scratch).at(scratch)?;
    let fetched = fetch();
    if !matches!(fetched, Ok(Some(_))) {
        let _ = std::fs::remove_dir_all(scratch);
    }
    fetched
}

fn fetch_index_files(
    store: &dyn ArtifactStore,
    id: &IndexId,
    digest: &str,
    scratch: &Path,
) -> Result<Option<Manifest>> {
    let base = Key::index_build(id, digest).map_err(|e| refused(store, &Key::index(id), e))?;
    let marker = key_in(store, &base, MANIFEST_FILE)?;
    let Some(bytes) = read_marker(store, &marker)? else {
        return Ok(None);
    };
    let manifest = check_manifest(store, &marker, &bytes, id, digest)?;
    let mut arrived = Vec::with_capacity(manifest.files.len());
    for entry in &manifest.files {
        let key = key_in(store, &base, &entry.path)?;
        let target = scratch.join(&entry.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        let (bytes, hash) = fetch_file(store, &key, &target, entry.bytes, context::FILE)?;
        let blake3 = hash.to_hex().to_string();
        if bytes != entry.bytes || blake3 != entry.blake3 {
            return Err(refused(
                store,
                &key,
                format!(
                    "{bytes} bytes with blake3 {blake3}, the manifest says {} bytes with {}; \
                     refused, nothing kept",
                    entry.bytes, entry.blake3
                ),
            ));
        }
        arrived.push(FileEntry {
            path: entry.path.clone(),
            bytes,
            blake3,
        });
    }
    if content_digest(&arrived) != digest {
        return Err(refused(
            store,
            &marker,
            "the files that arrived do not hash to the content digest",
        ));
    }
    quire_index::write_synced(scratch, MANIFEST_FILE, &bytes)?;
    Ok(Some(manifest))
}

/// The manifest the store committed for build `digest` of index `id` (checked as a fetch
/// checks it), `None` when there is none. Two builders' uploads of the same bytes differ in
/// the manifest's `build` section; the first commit marker is the one every reader sees.
pub fn committed_manifest(
    store: &dyn ArtifactStore,
    id: &IndexId,
    digest: &str,
) -> Result<Option<Manifest>> {
    let base = Key::index_build(id, digest).map_err(|e| refused(store, &Key::index(id), e))?;
    let marker = key_in(store, &base, MANIFEST_FILE)?;
    match read_marker(store, &marker)? {
        Some(bytes) => check_manifest(store, &marker, &bytes, id, digest).map(Some),
        None => Ok(None),
    }
}

/// Parse a fetched manifest and check it is the build asked for, naming `marker` otherwise.
fn check_manifest(
    store: &dyn ArtifactStore,
    marker: &Key,
    bytes: &[u8],
    id: &IndexId,
    digest: &str,
) -> Result<Manifest> {
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| refused(store, marker, e.to_string()))?;
    let problem = if manifest.index_id != *id {
        Some(format!("names index {}, not {id}", manifest.index_id))
    } else if manifest.content_digest != digest {
        Some(format!(
            "says content digest {}, not {digest}",
            manifest.content_digest
        ))
    } else if content_digest(&manifest.files) != digest {
        Some("its file list does not hash to its content digest".into())
    } else {
        quire_index::identity_problem(&manifest)
    };
    let mut seen = std::collections::BTreeSet::new();
    let bad_path = manifest
        .files
        .iter()
        .find(|f| f.path == MANIFEST_FILE || Key::new(&f.path).is_err() || !seen.insert(&f.path));
    match (problem, bad_path) {
        (Some(problem), _) => Err(refused(store, marker, format!("{problem}; refused"))),
        (None, Some(f)) => Err(refused(
            store,
            marker,
            format!(
                "lists a file path that cannot be stored: {:?}; refused",
                f.path
            ),
        )),
        (None, None) => Ok(manifest),
    }
}

/// Fetch snapshot `id` into `scratch` (created here): `snapshot.json`, then `documents.jsonl`
/// streamed and hashed against the id. `None`: the store holds no committed snapshot `id`.
pub fn fetch_snapshot(
    store: &dyn ArtifactStore,
    id: &SnapshotId,
    scratch: &Path,
) -> Result<Option<SnapshotInfo>> {
    into_scratch(scratch, || fetch_snapshot_files(store, id, scratch))
}

fn fetch_snapshot_files(
    store: &dyn ArtifactStore,
    id: &SnapshotId,
    scratch: &Path,
) -> Result<Option<SnapshotInfo>> {
    let base = Key::snapshot(id);
    let marker = key_in(store, &base, SNAPSHOT_FILE)?;
    let Some(bytes) = read_marker(store, &marker)? else {
        return Ok(None);
    };
    let info: SnapshotInfo =
        serde_json::from_slice(&bytes).map_err(|e| refused(store, &marker, e.to_string()))?;
    if info.snapshot_id != *id {
        return Err(refused(
            store,
            &marker,
            format!("names snapshot {}, not {id}; refused", info.snapshot_id),
        ));
    }
    let key = key_in(store, &base, DOCUMENTS_FILE)?;
    let target = scratch.join(DOCUMENTS_FILE);
    let (bytes_read, hash) = fetch_file(store, &key, &target, info.bytes, context::SNAPSHOT)?;
    if bytes_read != info.bytes || SnapshotId::from_hash(hash) != *id {
        return Err(refused(
            store,
            &key,
            format!("{bytes_read} bytes that do not hash to {id}; refused, nothing kept"),
        ));
    }
    quire_index::write_synced(scratch, SNAPSHOT_FILE, &bytes)?;
    Ok(Some(info))
}

/// A commit marker's bytes (at most [`MAX_MARKER_BYTES`]), `None` when it is absent.
fn read_marker(store: &dyn ArtifactStore, key: &Key) -> Result<Option<Vec<u8>>> {
    let Some(reader) = store.get(key)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    reader
        .take(MAX_MARKER_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unavailable(store, key, e.to_string()))?;
    if bytes.len() as u64 > MAX_MARKER_BYTES {
        return Err(refused(
            store,
            key,
            format!("longer than {MAX_MARKER_BYTES} bytes; refused"),
        ));
    }
    Ok(Some(bytes))
}

/// Stream `key` into a new file at `target`, hashing under `context` as it arrives, reading at
/// most one byte more than `expected` (so an over-long object cannot fill the disk); fsync.
/// Returns the bytes read and their hash.
fn fetch_file(
    store: &dyn ArtifactStore,
    key: &Key,
    target: &Path,
    expected: u64,
    context: &str,
) -> Result<(u64, blake3::Hash)> {
    let reader = store
        .get(key)?
        .ok_or_else(|| refused(store, key, "missing; refused, nothing kept"))?;
    let mut reader = Hashing::with_context(reader.take(expected + 1), context);
    let mut file = File::create(target).at(target)?;
    let mut buffer = vec![0u8; BUFFER_BYTES];
    loop {
        let n = reader
            .read(&mut buffer)
            .map_err(|e| unavailable(store, key, format!("{e}; nothing kept")))?;
        if n == 0 {
            break;
        }
        file.write_all(&buffer[..n]).at(target)?;
    }
    file.sync_all().at(target)?;
    Ok(reader.finish())
}

/// The committed builds (content digests) of index `id` in the store, sorted.
pub fn index_builds(store: &dyn ArtifactStore, id: &IndexId) -> Result<Vec<String>> {
    let mut builds = Vec::new();
    for digest in store.children(&Key::index(id))? {
        let Ok(base) = Key::index_build(id, &digest) else {
            continue;
        };
        if store.get(&key_in(store, &base, MANIFEST_FILE)?)?.is_some() {
            builds.push(digest);
        }
    }
    Ok(builds)
}

/// Every index id the store holds objects of (committed or not), sorted.
pub fn index_ids(store: &dyn ArtifactStore) -> Result<Vec<IndexId>> {
    let names = store.children(&Key::indexes())?;
    Ok(names.iter().filter_map(|n| n.parse().ok()).collect())
}

/// Every snapshot id the store holds objects of, sorted.
pub fn snapshot_ids(store: &dyn ArtifactStore) -> Result<Vec<SnapshotId>> {
    let names = store.children(&Key::snapshots())?;
    Ok(names.iter().filter_map(|n| n.parse().ok()).collect())
}

/// Remove build `digest` of index `id`: the commit marker first, so that no reader starts on
/// it, then every other object.
pub fn remove_index_build(store: &dyn ArtifactStore, id: &IndexId, digest: &str) -> Result<()> {
    let base = Key::index_build(id, digest).map_err(|e| refused(store, &Key::index(id), e))?;
    store.delete(&key_in(store, &base, MANIFEST_FILE)?)?;
    for key in store.list(&base)? {
        store.delete(&key)?;
    }
    Ok(())
}

/// Remove every object of index `id`: each committed build as [`remove_index_build`] does
/// (marker first), then whatever else is left under the id (uploads that never committed).
pub fn remove_index(store: &dyn ArtifactStore, id: &IndexId) -> Result<()> {
    for digest in index_builds(store, id)? {
        remove_index_build(store, id, &digest)?;
    }
    for key in store.list(&Key::index(id))? {
        store.delete(&key)?;
    }
    Ok(())
}

/// Remove every object of snapshot `id`: the commit marker first, so no reader starts on it,
/// and its [tombstone](super::tombstone) (if any) last, so a builder waiting for the deletion
/// to end puts the snapshot back only once nothing more will be deleted.
pub fn remove_snapshot(store: &dyn ArtifactStore, id: &SnapshotId) -> Result<()> {
    let base = Key::snapshot(id);
    store.delete(&key_in(store, &base, SNAPSHOT_FILE)?)?;
    let tombstone = super::tombstone::key(id);
    for key in store.list(&base)? {
        if key != tombstone {
            store.delete(&key)?;
        }
    }
    store.delete(&tombstone)
}

/// Whether the store holds snapshot `id`'s commit marker.
pub fn snapshot_committed(store: &dyn ArtifactStore, id: &SnapshotId) -> Result<bool> {
    let marker = key_in(store, &Key::snapshot(id), SNAPSHOT_FILE)?;
    Ok(store.get(&marker)?.is_some())
}

/// A reader that hashes (blake3 under a context) and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Self::with_context(inner, context::FILE)
    }

    fn with_context(inner: R, context: &str) -> Self {
        Self {
            inner,
            hasher: hasher(context),
            bytes: 0,
        }
    }

    /// The bytes read and their hash.
    fn finish(self) -> (u64, blake3::Hash) {
        (self.bytes, self.hasher.finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}
