//! The data dir: layout, locking, snapshots and atomic publishing of indices.

use std::collections::HashMap;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use quire_core::{BuildSpec, IndexId, Manifest, SnapshotId};
use quire_embed::Models;
use quire_index::{BuildRequest, EmbedCache, OpenIndex, Progress, Query, Response, Verification};
use serde::Serialize;

use crate::error::{IoContext, Result, StoreError};
use crate::import::{CorpusFormat, canonicalise, read_corpus};
use crate::snapshot::{self, DOCUMENTS_FILE, SNAPSHOT_FILE, SnapshotInfo};

const LOCK_FILE: &str = "LOCK";
const SNAPSHOTS: &str = "snapshots";
const INDEXES: &str = "indexes";
const TMP: &str = "tmp";
/// The embedding cache inside the data dir (see [`quire_index::cache`]).
pub const EMBED_CACHE: &str = "embed-cache";
/// Shortest index-id prefix (in hex characters) accepted as a target.
pub const MIN_PREFIX_HEX: usize = 12;

/// How a process holds the data dir.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reading only; other readers may hold it too.
    Read,
    /// Importing and building; no one else may hold it.
    Write,
}

/// An open data dir.
///
/// ```text
/// DIR/LOCK                      advisory lock (shared for readers, exclusive for writers)
/// DIR/snapshots/snap-…/         documents.jsonl (canonical), snapshot.json
/// DIR/indexes/idx-…/            published, read-only index artifacts
/// DIR/tmp/                      builds in progress; emptied whenever a writer opens the dir
/// ```
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    access: Access,
    models: Models,
    open: Mutex<HashMap<IndexId, Arc<OpenIndex>>>,
    _lock: File,
}

/// Retrieval, independent of any transport: the CLI's local mode and the server both answer
/// queries through this trait.
pub trait RetrievalService {
    /// Answer `query` against `target`: an index id or a unique prefix of one.
    fn retrieve(&self, target: &str, query: &Query) -> Result<Response>;
}

impl RetrievalService for Store {
    fn retrieve(&self, target: &str, query: &Query) -> Result<Response> {
        let id = self.resolve_index(target)?;
        Ok(self.open_index(&id)?.search(query)?)
    }
}

/// The result of a build.
#[derive(Clone, Debug, Serialize)]
pub struct BuildOutcome {
    /// The index's manifest.
    pub manifest: Manifest,
    /// True when the index already existed, verified, and nothing was built.
    pub reused: bool,
}

/// One line of `quire indexes`.
#[derive(Clone, Debug, Serialize)]
pub struct IndexSummary {
    /// The index id.
    pub index_id: IndexId,
    /// Its content digest.
    pub content_digest: String,
    /// The snapshot it was built from.
    pub snapshot_id: SnapshotId,
    /// Documents and chunks.
    pub documents: u64,
    /// Chunks indexed.
    pub chunks: u64,
    /// Embedding model.
    pub model: String,
    /// When it was built.
    pub built_at: String,
    /// Newest source document (or import time).
    pub source_freshness: String,
    /// Whether the source is older than the spec's freshness window (`None`: no window).
    pub stale: Option<bool>,
}

/// An index's manifest and whether its source is stale.
#[derive(Clone, Debug, Serialize)]
pub struct IndexInfo {
    /// The manifest.
    pub manifest: Manifest,
    /// Whether the source is older than the spec's freshness window (`None`: no window).
    pub stale: Option<bool>,
}

/// The outcome of `verify` for one index.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// The index verified.
    pub index_id: IndexId,
    /// The result.
    #[serde(flatten)]
    pub verification: Verification,
}

/// The outcome of rebuilding an index from its stored snapshot and spec.
#[derive(Clone, Debug, Serialize)]
pub struct RebuildCheck {
    /// Whether id and digest both match.
    pub ok: bool,
    /// The stored index id.
    pub index_id: IndexId,
    /// The id the rebuild produced.
    pub rebuilt_index_id: IndexId,
    /// The stored content digest.
    pub content_digest: String,
    /// The digest the rebuild produced.
    pub rebuilt_content_digest: String,
    /// Files whose contents differ between the two.
    pub differing_files: Vec<String>,
}

impl Store {
    /// Open the data dir at `root`; a writer creates it if needed, a reader requires it. A writer
    /// also clears `tmp/`, which can only hold debris of builds that were killed.
    pub fn open(root: impl Into<PathBuf>, access: Access) -> Result<Self> {
        let root = root.into();
        // A reader never creates a data dir: a mistyped --data should say so, not list nothing.
        if access == Access::Read && !root.join(LOCK_FILE).exists() {
            return Err(StoreError::MissingDataDir { path: root });
        }
        for sub in [SNAPSHOTS, INDEXES, TMP] {
            std::fs::create_dir_all(root.join(sub)).at(root.join(sub))?;
        }
        let lock_path = root.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .at(&lock_path)?;
        let attempt = match access {
            Access::Read => lock.try_lock_shared(),
            Access::Write => lock.try_lock(),
        };
        match attempt {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: root,
                    lock: lock_path,
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::Io {
                    path: lock_path,
                    source: e,
                });
            }
        }
        let store = Self {
            root,
            access,
            models: Models::builtin(),
            open: Mutex::default(),
            _lock: lock,
        };
        if access == Access::Write {
            store.clear_tmp()?;
        }
        Ok(store)
    }

    /// The data dir's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The embedding models available to builds and queries.
    pub fn models(&self) -> &Models {
        &self.models
    }

    /// Use `models` (built-in plus registered local models) for builds and queries from now on.
    pub fn with_models(mut self, models: Models) -> Self {
        self.models = models;
        self
    }

    fn clear_tmp(&self) -> Result<()> {
        let tmp = self.root.join(TMP);
        for entry in std::fs::read_dir(&tmp).at(&tmp)? {
            let path = entry.at(&tmp)?.path();
            make_writable(&path)?;
            if path.is_dir() {
                std::fs::remove_dir_all(&path).at(&path)?;
            } else {
                std::fs::remove_file(&path).at(&path)?;
            }
        }
        Ok(())
    }

    fn scratch(&self, what: &str) -> Result<PathBuf> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = self
            .root
            .join(TMP)
            .join(format!("{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).at(&dir)?;
        Ok(dir)
    }

    fn require_write(&self) -> Result<()> {
        match self.access {
            Access::Write => Ok(()),
            Access::Read => Err(StoreError::Locked {
                path: self.root.clone(),
                lock: self.root.join(LOCK_FILE),
            }),
        }
    }

    /// Import the corpus at `path` as a snapshot. Importing the same documents again (in any
    /// order or format) returns the existing snapshot. A refused corpus stores nothing.
    pub fn import(&self, path: &Path, format: Option<CorpusFormat>) -> Result<SnapshotInfo> {
        self.import_labelled(path, format, &path.display().to_string())
    }

    /// Import an uploaded corpus file (JSONL or BEIR); errors name the file as `name`.
    pub fn import_upload(
        &self,
        bytes: &[u8],
        format: Option<CorpusFormat>,
        name: &str,
    ) -> Result<SnapshotInfo> {
        self.require_write()?;
        let spool = self.scratch("upload")?;
        let path = spool.join("corpus");
        let result = std::fs::write(&path, bytes)
            .at(&path)
            .and_then(|()| self.import_labelled(&path, format, name));
        std::fs::remove_dir_all(&spool).at(&spool)?;
        result
    }

    fn import_labelled(
        &self,
        path: &Path,
        format: Option<CorpusFormat>,
        label: &str,
    ) -> Result<SnapshotInfo> {
        self.require_write()?;
        let format = match format {
            Some(f) => f,
            None => CorpusFormat::detect(path)?,
        };
        let docs = canonicalise(read_corpus(path, format, label)?, Path::new(label))?;
        let scratch = self.scratch("import")?;
        let (snapshot_id, bytes) = snapshot::write_canonical(&docs, &scratch.join(DOCUMENTS_FILE))?;
        let target = self.root.join(SNAPSHOTS).join(snapshot_id.as_str());
        if target.exists() {
            std::fs::remove_dir_all(&scratch).at(&scratch)?;
            return self.snapshot(&snapshot_id);
        }
        let info = SnapshotInfo {
            snapshot_id,
            documents: docs.len() as u64,
            bytes,
            imported_at: jiff::Timestamp::now().to_string(),
            source: label.to_owned(),
            format: format.name().into(),
        };
        write_json(&scratch.join(SNAPSHOT_FILE), &info)?;
        publish(&scratch, &target)?;
        Ok(info)
    }

    /// Describe a stored snapshot.
    pub fn snapshot(&self, id: &SnapshotId) -> Result<SnapshotInfo> {
        let path = self
            .root
            .join(SNAPSHOTS)
            .join(id.as_str())
            .join(SNAPSHOT_FILE);
        if !path.exists() {
            return Err(StoreError::NotFound {
                kind: "snapshot",
                id: id.to_string(),
            });
        }
        read_json(&path)
    }

    /// Every stored snapshot, by id.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        self.list_ids::<SnapshotId>(SNAPSHOTS)?
            .iter()
            .map(|id| self.snapshot(id))
            .collect()
    }

    /// Resolve a snapshot id or a unique prefix of one.
    pub fn resolve_snapshot(&self, target: &str) -> Result<SnapshotId> {
        resolve(
            target,
            SnapshotId::PREFIX,
            "snapshot",
            self.list_ids(SNAPSHOTS)?,
        )
    }

    fn list_ids<T: std::str::FromStr>(&self, sub: &str) -> Result<Vec<T>> {
        let dir = self.root.join(sub);
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let name = entry.at(&dir)?.file_name().to_string_lossy().into_owned();
            names.push(name);
        }
        names.sort();
        Ok(names.iter().filter_map(|n| n.parse().ok()).collect())
    }

    /// The id the index built from `snapshot` with `spec` has (or will have).
    pub fn index_id_for(snapshot: &SnapshotId, spec: &BuildSpec) -> IndexId {
        IndexId::derive(snapshot, &spec.canonical_json(), quire_core::FORMAT_VERSION)
    }

    /// Build the index for `snapshot` and `spec`, publishing it atomically. If it exists
    /// already it is verified and reused; a stored index that fails verification is reported,
    /// never overwritten.
    pub fn build(
        &self,
        snapshot: &SnapshotId,
        spec: &BuildSpec,
        progress: &dyn Progress,
    ) -> Result<BuildOutcome> {
        self.require_write()?;
        let info = self.snapshot(snapshot)?;
        // A local model's digest is part of the index identity even when the spec leaves it out.
        let (embedding, embedder) = self.models.pin(&spec.embedding)?;
        let spec = &BuildSpec {
            embedding,
            ..spec.clone()
        };
        let index_id = Self::index_id_for(snapshot, spec);
        let target = self.index_dir(&index_id);
        if target.exists() {
            let check = quire_index::verify_dir(&target)?;
            if !check.ok {
                return Err(StoreError::Corrupt {
                    id: index_id.to_string(),
                    problems: check.problems.join("; "),
                });
            }
            return Ok(BuildOutcome {
                manifest: quire_index::read_manifest(&target)?,
                reused: true,
            });
        }
        let docs =
            snapshot::read_canonical(&self.root.join(SNAPSHOTS).join(snapshot.as_str()), snapshot)?;
        let scratch = self.scratch("build")?;
        let cache = EmbedCache::new(self.root.join(EMBED_CACHE));
        let request = BuildRequest {
            snapshot_id: snapshot,
            documents: &docs,
            spec,
            embedder: embedder.as_ref(),
            imported_at: &info.imported_at,
            cache: Some(&cache),
        };
        let manifest = quire_index::build_index(&request, &scratch, progress)?;
        publish(&scratch, &target)?;
        Ok(BuildOutcome {
            manifest,
            reused: false,
        })
    }

    /// Where the index `id` lives (whether or not it exists).
    pub fn index_dir(&self, id: &IndexId) -> PathBuf {
        self.root.join(INDEXES).join(id.as_str())
    }

    /// Resolve an index id, or a unique prefix of at least [`MIN_PREFIX_HEX`] hex characters
    /// (with or without `idx-`).
    pub fn resolve_index(&self, target: &str) -> Result<IndexId> {
        resolve(target, IndexId::PREFIX, "index", self.list_ids(INDEXES)?)
    }

    /// The manifest of a published index.
    pub fn manifest(&self, id: &IndexId) -> Result<Manifest> {
        let dir = self.index_dir(id);
        if !dir.exists() {
            return Err(StoreError::NotFound {
                kind: "index",
                id: id.to_string(),
            });
        }
        Ok(quire_index::read_manifest(&dir)?)
    }

    /// The index `id`, opened once and shared by every later caller.
    pub fn open_index(&self, id: &IndexId) -> Result<Arc<OpenIndex>> {
        if let Some(open) = self.open.lock().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(open);
        }
        let dir = self.index_dir(id);
        if !dir.exists() {
            return Err(StoreError::NotFound {
                kind: "index",
                id: id.to_string(),
            });
        }
        let opened = Arc::new(OpenIndex::open(&dir, &self.models)?);
        if let Ok(mut map) = self.open.lock() {
            // Another thread may have opened it meanwhile; keep the first so all share one.
            return Ok(map.entry(id.clone()).or_insert(opened).clone());
        }
        Ok(opened)
    }

    /// One index's manifest and whether its source is stale.
    pub fn index_info(&self, id: &IndexId) -> Result<IndexInfo> {
        let manifest = self.manifest(id)?;
        let stale = staleness(&manifest, jiff::Timestamp::now());
        Ok(IndexInfo { manifest, stale })
    }

    /// Every published index, by id.
    pub fn indexes(&self) -> Result<Vec<IndexSummary>> {
        let now = jiff::Timestamp::now();
        self.list_ids::<IndexId>(INDEXES)?
            .iter()
            .map(|id| Ok(summarise(&self.manifest(id)?, now)))
            .collect()
    }

    /// Recompute the digest of a published index and compare with its manifest.
    pub fn verify(&self, id: &IndexId) -> Result<Verification> {
        self.manifest(id)?;
        Ok(quire_index::verify_dir(&self.index_dir(id))?)
    }

    /// Rebuild an index from its stored snapshot and spec into scratch space and compare.
    pub fn rebuild_check(&self, id: &IndexId, progress: &dyn Progress) -> Result<RebuildCheck> {
        self.require_write()?;
        let stored = self.manifest(id)?;
        let info = self.snapshot(&stored.snapshot_id)?;
        let embedder = self.models.resolve(&stored.spec.embedding)?;
        let docs = snapshot::read_canonical(
            &self.root.join(SNAPSHOTS).join(stored.snapshot_id.as_str()),
            &stored.snapshot_id,
        )?;
        let scratch = self.scratch("rebuild")?;
        let request = BuildRequest {
            snapshot_id: &stored.snapshot_id,
            documents: &docs,
            spec: &stored.spec,
            embedder: embedder.as_ref(),
            imported_at: &info.imported_at,
            // Cold on purpose: a rebuild check recomputes every vector with the model.
            cache: None,
        };
        let rebuilt = quire_index::build_index(&request, &scratch, progress);
        std::fs::remove_dir_all(&scratch).at(&scratch)?;
        let rebuilt = rebuilt?;
        let differing_files = diff_files(&stored, &rebuilt);
        Ok(RebuildCheck {
            ok: rebuilt.index_id == stored.index_id
                && rebuilt.content_digest == stored.content_digest,
            index_id: stored.index_id,
            rebuilt_index_id: rebuilt.index_id,
            content_digest: stored.content_digest,
            rebuilt_content_digest: rebuilt.content_digest,
            differing_files,
        })
    }
}

fn diff_files(a: &Manifest, b: &Manifest) -> Vec<String> {
    let mut paths: Vec<&str> = a
        .files
        .iter()
        .chain(&b.files)
        .map(|f| f.path.as_str())
        .collect();
    paths.sort();
    paths.dedup();
    let hash = |m: &Manifest, p: &str| {
        m.files
            .iter()
            .find(|f| f.path == p)
            .map(|f| f.blake3.clone())
    };
    paths
        .into_iter()
        .filter(|p| hash(a, p) != hash(b, p))
        .map(str::to_owned)
        .collect()
}

/// Whether the manifest's source is older than its spec's freshness window at `now`
/// (`None`: the spec sets no window).
fn staleness(m: &Manifest, now: jiff::Timestamp) -> Option<bool> {
    m.spec.freshness_window_secs().map(|window| {
        m.build
            .source_freshness
            .parse::<jiff::Timestamp>()
            .map(|fresh| now.as_second().saturating_sub(fresh.as_second()) > window as i64)
            .unwrap_or(true)
    })
}

fn summarise(m: &Manifest, now: jiff::Timestamp) -> IndexSummary {
    let stale = staleness(m, now);
    IndexSummary {
        index_id: m.index_id.clone(),
        content_digest: m.content_digest.clone(),
        snapshot_id: m.snapshot_id.clone(),
        documents: m.counts.documents,
        chunks: m.counts.chunks,
        model: m.embedding.model_id.clone(),
        built_at: m.build.built_at.clone(),
        source_freshness: m.build.source_freshness.clone(),
        stale,
    }
}

fn resolve<T: std::fmt::Display + Clone>(
    target: &str,
    prefix: &str,
    kind: &'static str,
    ids: Vec<T>,
) -> Result<T> {
    let hex = target.strip_prefix(prefix).unwrap_or(target);
    if hex.len() < MIN_PREFIX_HEX {
        return Err(StoreError::PrefixTooShort {
            prefix: target.into(),
            min: MIN_PREFIX_HEX,
        });
    }
    let wanted = format!("{prefix}{hex}");
    let matches: Vec<T> = ids
        .into_iter()
        .filter(|id| id.to_string().starts_with(&wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(StoreError::NotFound {
            kind,
            id: target.into(),
        }),
        many => Err(StoreError::Ambiguous {
            prefix: target.into(),
            candidates: many
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Make every file under `scratch` read-only, fsync it, and rename it to `target`.
fn publish(scratch: &Path, target: &Path) -> Result<()> {
    make_read_only(scratch)?;
    quire_index::sync_tree(scratch)?;
    std::fs::rename(scratch, target).at(target)?;
    if let Some(parent) = target.parent() {
        File::open(parent).and_then(|f| f.sync_all()).at(parent)?;
    }
    Ok(())
}

fn make_read_only(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        if path.is_dir() {
            make_read_only(&path)?;
        } else {
            let mut perms = std::fs::metadata(&path).at(&path)?.permissions();
            perms.set_readonly(true);
            std::fs::set_permissions(&path, perms).at(&path)?;
        }
    }
    Ok(())
}

fn make_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).at(path)? {
            make_writable(&entry.at(path)?.path())?;
        }
    }
    let mut perms = std::fs::symlink_metadata(path).at(path)?.permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).at(path)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Io {
        path: path.into(),
        source: e.into(),
    })?;
    json.push(b'\n');
    std::fs::write(path, json).at(path)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).at(path)?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        id: path.display().to_string(),
        problems: e.to_string(),
    })
}
