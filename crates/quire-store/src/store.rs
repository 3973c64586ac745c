//! The data dir: layout, locking, builds and atomic publishing of indices (importing and
//! listing snapshots is in [`snapshots`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use quire_core::outcome::{BuildOutcome, IndexInfo, IndexSummary, RebuildCheck};
use quire_core::{BuildSpec, IndexId, Manifest, SnapshotId};
use quire_embed::Models;
use quire_index::{
    BuildRequest, Donor, EmbedCache, OpenIndex, Progress, Query, Response, Verification,
};
use serde::Serialize;

use crate::artifacts::{ArtifactStore, Created};
use crate::audit::{AuditDraft, AuditEvent, AuditVerification};
use crate::cache::{CachePolicy, IndexCache};
use crate::error::{IoContext, Result, StoreError};
use crate::redb_registry::RedbRegistry;
use crate::registry::Registry;
use quire_release::AliasRevision;

/// The current revision of every alias.
pub(crate) type AliasTable = Arc<BTreeMap<String, AliasRevision>>;
use crate::snapshot::{self, SnapshotDocuments, SnapshotInfo};

mod embed_share;
pub(crate) use embed_share::PACKS;
mod evict;
mod follow;
mod shared;
mod snapshots;

pub use follow::{FollowReport, Waiting};
pub use shared::OnFetch;
pub use snapshots::Upload;

/// The lock file whose presence makes a directory a data dir.
pub const LOCK_FILE: &str = "LOCK";
const SNAPSHOTS: &str = "snapshots";
const INDEXES: &str = "indexes";
const TMP: &str = "tmp";
/// The embedding cache inside the data dir (see [`quire_index::cache`]).
pub const EMBED_CACHE: &str = "embed-cache";
pub use quire_core::ids::MIN_PREFIX_HEX;

pub use crate::access::Access;

/// How often a process following a shared registry reads its aliases when no notification
/// came (notifications sent while it was disconnected are lost).
pub const DEFAULT_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Tunables of a data dir that are not part of any artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// GC keeps every index an alias used in its last this-many revisions.
    pub gc_keep_revisions: usize,
    /// When open indices are closed.
    pub cache: CachePolicy,
    /// The largest document an import accepts (a JSONL or BEIR line, a directory's file).
    pub max_document_bytes: u64,
    /// With a shared store, GC marks an index for deletion in the registry and deletes its
    /// objects only this long after: at least two poll intervals of the replicas, so that none
    /// is still switching to it.
    pub gc_grace: std::time::Duration,
    /// The data dir is a cache of the shared store (a replica): an index that no alias arm
    /// serves, that is not open and that no query holds is removed from disk after each
    /// follow round and cache sweep (and fetched again if asked for later).
    pub evict_unused: bool,
    /// With a shared store, GC keeps an index whose newest object in the store was written
    /// less than this long ago although nothing holds it yet, so a build another machine has
    /// just published is not collected before it can be aliased or pinned; an upload that
    /// never committed is deleted once its newest object is this old, and so are embedding
    /// packs of a model no index in the store uses. Ages are by the store's clock.
    pub gc_fresh: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            gc_keep_revisions: 10,
            cache: CachePolicy::default(),
            max_document_bytes: crate::import::DEFAULT_MAX_DOCUMENT_BYTES,
            gc_grace: 2 * DEFAULT_POLL_INTERVAL,
            evict_unused: false,
            gc_fresh: std::time::Duration::from_secs(3600),
        }
    }
}

/// An open data dir.
///
/// ```text
/// DIR/LOCK                      advisory lock (shared for readers, exclusive for writers)
/// DIR/registry.redb             aliases, pins, audit log, manifests, evaluation reports
/// DIR/snapshots/snap-…/         documents.jsonl (canonical), snapshot.json
/// DIR/indexes/idx-…/            published, read-only index artifacts
/// DIR/tmp/                      builds in progress; emptied whenever a writer opens the dir
/// ```
pub struct Store {
    root: PathBuf,
    access: Access,
    models: Models,
    pub(crate) options: StoreOptions,
    pub(crate) registry: Box<dyn Registry>,
    /// The current revision of every alias; replaced whole after each committed change.
    aliases: RwLock<AliasTable>,
    /// Serialises release mutations (alias changes, pins, GC, deletes) within this process.
    release: Mutex<()>,
    cache: Mutex<IndexCache>,
    /// Where builds and imports are shared with other machines; `None`: this data dir only.
    artifacts: Option<Arc<dyn ArtifactStore>>,
    /// Serialises fetches from `artifacts` within this process (one download per id).
    fetching: Mutex<()>,
    /// Held shared while an index is fetched and opened, exclusively while unused ones are
    /// evicted from disk, so an index is never removed between being found and being opened.
    evicting: RwLock<()>,
    /// Told about every fetch of an index from `artifacts`.
    on_fetch: Option<OnFetch>,
    _lock: File,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
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

impl Store {
    /// Open the data dir at `root`; a writer creates it if needed, a reader requires it. A writer
    /// also clears `tmp/`, which can only hold debris of builds that were killed.
    pub fn open(root: impl Into<PathBuf>, access: Access) -> Result<Self> {
        Self::open_inner(root.into(), access, None)
    }

    /// Open the data dir at `root` as [`Store::open`] does, with `registry` holding aliases,
    /// pins, manifests, reports and the audit log instead of the data dir's `registry.redb`
    /// (which is then neither created nor read). The registry should refuse changes when
    /// `access` is [`Access::Read`].
    pub fn open_with_registry(
        root: impl Into<PathBuf>,
        access: Access,
        registry: Box<dyn Registry>,
    ) -> Result<Self> {
        Self::open_inner(root.into(), access, Some(registry))
    }

    /// Open with `registry`, or the data dir's redb registry when `None`.
    fn open_inner(
        root: PathBuf,
        access: Access,
        registry: Option<Box<dyn Registry>>,
    ) -> Result<Self> {
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
        let registry = match registry {
            Some(registry) => registry,
            None => Box::new(RedbRegistry::open(&root, access)?),
        };
        let options = StoreOptions::default();
        let store = Self {
            root,
            access,
            models: Models::builtin(),
            options,
            registry,
            aliases: RwLock::default(),
            release: Mutex::default(),
            cache: Mutex::new(IndexCache::new(options.cache)),
            artifacts: None,
            fetching: Mutex::default(),
            evicting: RwLock::default(),
            on_fetch: None,
            _lock: lock,
        };
        if access == Access::Write {
            store.clear_tmp()?;
        }
        let current = store
            .registry
            .alias_revisions()?
            .into_iter()
            .filter_map(|(name, mut history)| history.pop().map(|r| (name, r)))
            .collect();
        *store.aliases.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(current);
        Ok(store)
    }

    /// Replace the tunables (before sharing the store).
    pub fn with_options(mut self, options: StoreOptions) -> Self {
        self.options = options;
        self.cache = Mutex::new(IndexCache::new(options.cache));
        self
    }

    pub(crate) fn release_lock(&self) -> MutexGuard<'_, ()> {
        self.release.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn cache(&self) -> MutexGuard<'_, IndexCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn current_aliases(&self) -> AliasTable {
        self.aliases
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Indices an alias arm serves right now: the cache never closes them.
    fn protected(&self) -> BTreeSet<IndexId> {
        self.current_aliases()
            .values()
            .flat_map(|r| r.state.indexes().cloned())
            .collect()
    }

    /// Append one event to the audit log on its own.
    pub fn audit(&self, draft: AuditDraft) -> Result<AuditEvent> {
        self.registry.append_audit(draft)
    }

    /// Record a new snapshot in the audit log.
    fn record_import(&self, info: &SnapshotInfo, actor: &str) -> Result<AuditEvent> {
        self.audit(AuditDraft {
            actor: actor.to_owned(),
            action: "snapshot.import".into(),
            target: info.snapshot_id.to_string(),
            after: serde_json::json!({ "documents": info.documents }),
            ..AuditDraft::default()
        })
    }

    /// Every audit event, oldest first.
    pub fn audit_events(&self) -> Result<Vec<AuditEvent>> {
        self.registry.audit_events()
    }

    /// At most `limit` audit events with seq above `after`, oldest first.
    pub fn audit_page(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>> {
        self.registry.audit_page(after, limit)
    }

    /// Check the audit log's hash chain.
    pub fn audit_verify(&self) -> Result<AuditVerification> {
        self.registry.verify_audit()
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

    pub(crate) fn scratch(&self, what: &str) -> Result<PathBuf> {
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

    pub(crate) fn require_write(&self) -> Result<()> {
        match self.access {
            Access::Write => Ok(()),
            Access::Read => Err(StoreError::Locked {
                path: self.root.clone(),
                lock: self.root.join(LOCK_FILE),
            }),
        }
    }

    /// Build as [`Store::build`] does, publish the index to the shared artifact store (if
    /// any: every file, then the manifest as the commit marker), and record a new index
    /// (manifest and audit event) as built by `actor`. Without a shared store, reusing an
    /// existing index records nothing; with one, the registry is asked either way (it keeps
    /// the first record), and an upload of ours that loses to another build is removed.
    pub fn build_as(
        &self,
        snapshot: &SnapshotId,
        spec: &BuildSpec,
        progress: &dyn Progress,
        actor: &str,
    ) -> Result<BuildOutcome> {
        let outcome = self.build(snapshot, spec, progress)?;
        let uploaded = self.publish_index(&outcome.manifest)?;
        if !outcome.reused || uploaded.is_some() {
            // The registry records what the store committed: when another builder's upload of
            // these bytes came first, its manifest (another `build` section), so that replicas
            // comparing a fetched manifest with the record compare the same thing.
            let committed = match uploaded {
                Some(Created::Exists) => self.committed_manifest(&outcome.manifest)?,
                _ => None,
            };
            let record = committed.as_ref().unwrap_or(&outcome.manifest);
            if let Some(winner) = self.record_build(record, actor, uploaded)? {
                return Ok(BuildOutcome {
                    manifest: winner,
                    reused: true,
                    ..outcome
                });
            }
        }
        Ok(outcome)
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
        if self.artifacts.is_some() {
            self.fetch_snapshot(snapshot)?;
        }
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
                unreadable_documents: quire_index::tables::unreadable_documents(&target)?,
            });
        }
        let documents =
            SnapshotDocuments::new(&self.root.join(SNAPSHOTS).join(snapshot.as_str()), &info);
        let scratch = self.scratch("build")?;
        let cache = EmbedCache::new(self.root.join(EMBED_CACHE));
        let namespace = embedder.cacheable().then(|| embedder.cache_namespace());
        if let Some(namespace) = &namespace {
            self.fetch_embed_packs(&cache, namespace);
        }
        let donors = self.donors()?;
        let request = BuildRequest {
            snapshot_id: snapshot,
            documents: &documents,
            spec,
            embedder: embedder.as_ref(),
            imported_at: &info.imported_at,
            cache: Some(&cache),
            donors: &donors,
        };
        let manifest = match quire_index::build_index(&request, &scratch, progress) {
            Ok(manifest) => manifest,
            Err(e) => {
                // A failed or cancelled build leaves nothing behind in tmp/.
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(snapshot::build_error(e));
            }
        };
        publish(&scratch, &target)?;
        if let Some(namespace) = &namespace {
            self.share_embed_pack(&cache, namespace);
        }
        Ok(BuildOutcome {
            manifest,
            reused: false,
            unreadable_documents: quire_index::tables::unreadable_documents(&target)?,
        })
    }

    /// Where the index `id` lives (whether or not it exists).
    pub fn index_dir(&self, id: &IndexId) -> PathBuf {
        self.root.join(INDEXES).join(id.as_str())
    }

    /// Resolve an index id, or a unique prefix of at least [`MIN_PREFIX_HEX`] hex characters
    /// (with or without `idx-`): among this data dir's indices, else the shared store's (asked
    /// only then, so a query on a local index never waits for the store).
    pub fn resolve_index(&self, target: &str) -> Result<IndexId> {
        match resolve(target, IndexId::PREFIX, "index", self.list_ids(INDEXES)?) {
            Err(StoreError::NotFound { .. }) if self.artifacts.is_some() => {
                resolve(target, IndexId::PREFIX, "index", self.shared_index_ids()?)
            }
            resolved => resolved,
        }
    }

    /// The manifest of a published index (fetched from the shared store when missing here).
    pub fn manifest(&self, id: &IndexId) -> Result<Manifest> {
        let dir = self.fetch_index(id, None)?;
        Ok(quire_index::read_manifest(&dir)?)
    }

    /// The index `id`, opened once and shared by every caller while it stays open.
    pub fn open_index(&self, id: &IndexId) -> Result<Arc<OpenIndex>> {
        if let Some(open) = self.cache().get(id) {
            return Ok(open);
        }
        let _not_evicted = self.evicting.read().unwrap_or_else(|e| e.into_inner());
        let dir = self.fetch_index(id, None)?;
        // Opened outside the cache lock: opening takes milliseconds and must not stall
        // queries on other indices. Another thread may open it meanwhile; the cache keeps
        // the first, so all share one.
        let opened = Arc::new(OpenIndex::open(&dir, &self.models)?);
        let bytes = opened.manifest().files.iter().map(|f| f.bytes).sum();
        let protected = self.protected();
        Ok(self.cache().insert(id, opened, bytes, &protected))
    }

    /// Close indices that sat idle too long or overflow the memory budget.
    pub fn sweep_cache(&self) {
        let protected = self.protected();
        self.cache().sweep(Instant::now(), &protected, None);
        if let Err(e) = self.evict_unused() {
            tracing::warn!("evicting unused indices: {e}");
        }
    }

    /// Ids of the indices open right now.
    pub fn open_indexes(&self) -> BTreeSet<IndexId> {
        self.cache().open_ids()
    }

    /// Every published index id.
    /// Published indices whose stages a build may reuse: those with stage keys in their
    /// manifest. One whose manifest does not read is left out (the build computes instead).
    fn donors(&self) -> Result<Vec<Donor>> {
        let mut donors = Vec::new();
        for id in self.list_indexes()? {
            let dir = self.index_dir(&id);
            match quire_index::read_manifest(&dir) {
                Ok(manifest) if !manifest.build.stages.is_empty() => {
                    donors.push(Donor { dir, manifest });
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(index = %id, "not a reuse candidate: {e}"),
            }
        }
        Ok(donors)
    }

    pub(crate) fn list_indexes(&self) -> Result<Vec<IndexId>> {
        self.list_ids(INDEXES)
    }

    pub(crate) fn remove_index_dir(&self, id: &IndexId) -> Result<()> {
        self.remove_dir(&self.index_dir(id), "gc-index")
    }

    pub(crate) fn remove_snapshot_dir(&self, id: &SnapshotId) -> Result<()> {
        self.remove_dir(&self.root.join(SNAPSHOTS).join(id.as_str()), "gc-snapshot")
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
        let documents = SnapshotDocuments::new(
            &self.root.join(SNAPSHOTS).join(stored.snapshot_id.as_str()),
            &info,
        );
        let scratch = self.scratch("rebuild")?;
        let request = BuildRequest {
            snapshot_id: &stored.snapshot_id,
            documents: &documents,
            spec: &stored.spec,
            embedder: embedder.as_ref(),
            imported_at: &info.imported_at,
            // Cold on purpose: a rebuild check recomputes every vector with the model.
            cache: None,
            donors: &[],
        };
        let rebuilt = quire_index::build_index(&request, &scratch, progress);
        std::fs::remove_dir_all(&scratch).at(&scratch)?;
        let rebuilt = rebuilt.map_err(snapshot::build_error)?;
        let differing_files = diff_files(&stored, &rebuilt);
        let notes = build_notes(&stored, &rebuilt);
        Ok(RebuildCheck {
            ok: rebuilt.index_id == stored.index_id
                && rebuilt.content_digest == stored.content_digest,
            index_id: stored.index_id,
            rebuilt_index_id: rebuilt.index_id,
            content_digest: stored.content_digest,
            rebuilt_content_digest: rebuilt.content_digest,
            differing_files,
            notes,
        })
    }
}

/// Differences in how two builds of one index ran that can explain differing bytes.
fn build_notes(stored: &Manifest, rebuilt: &Manifest) -> Vec<String> {
    let mut notes = Vec::new();
    let (was, now) = (&stored.build.embed_kernel, &rebuilt.build.embed_kernel);
    if was != now {
        let name = |k: &Option<String>| k.clone().unwrap_or_else(|| "unrecorded".into());
        notes.push(format!(
            "the vectors were computed on the {} kernel path, the rebuild ran {}; quire's \
             kernels give the same bits on every path, so a vectors.f32 difference points at \
             the model code (quire {} then, {} now)",
            name(was),
            name(now),
            stored.versions.quire,
            rebuilt.versions.quire,
        ));
    }
    if stored.versions != rebuilt.versions {
        notes.push(format!(
            "built by quire {} (tantivy {}), rebuilt by quire {} (tantivy {})",
            stored.versions.quire,
            stored.versions.tantivy,
            rebuilt.versions.quire,
            rebuilt.versions.tantivy
        ));
    }
    notes
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

/// [`publish`] a fetched artifact; when another process published it meanwhile, keep theirs
/// (the same checked bytes) and drop `scratch`.
fn publish_fetched(scratch: &Path, target: &Path) -> Result<()> {
    match publish(scratch, target) {
        Err(_) if target.exists() => {
            make_writable(scratch)?;
            std::fs::remove_dir_all(scratch).at(scratch)
        }
        published => published,
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

pub(crate) fn make_writable(path: &Path) -> Result<()> {
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
