//! The data dir with a shared [`ArtifactStore`]: builds and imports publish there, and an index
//! or snapshot missing here is fetched from there (the data dir is then its local cache).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use quire_core::{IndexId, Manifest, SnapshotId};

use super::{INDEXES, SNAPSHOTS, Store, publish_fetched};
use crate::AuditDraft;
use crate::artifacts::{ArtifactStore, Created, tombstone, transfer};
use crate::error::{Result, StoreError};
use crate::registry::Published;

/// Told about one fetch of an index from the shared store: its id, and how long it took or
/// why it failed.
pub type OnFetch = Arc<dyn Fn(&IndexId, std::result::Result<Duration, &StoreError>) + Send + Sync>;

impl Store {
    /// Share artifacts through `store` from now on (before sharing the store): builds and
    /// imports upload there, and indices or snapshots this data dir lacks are fetched from
    /// there on first use.
    pub fn with_artifacts(mut self, store: Arc<dyn ArtifactStore>) -> Self {
        self.artifacts = Some(store);
        self
    }

    /// The shared artifact store, if there is one.
    pub fn artifacts(&self) -> Option<&dyn ArtifactStore> {
        self.artifacts.as_deref()
    }

    /// Upload the published index `manifest` describes to the shared store: `None` without
    /// one, else whether this call committed it or that build was there already. Between the
    /// index's files and its commit marker, the snapshot it was built from goes up again if
    /// the store lost it or is losing it (GC on another machine deletes a snapshot once no
    /// index in the store was built from it, and this build may have started before): the
    /// [`tombstone`] protocol.
    pub fn publish_index(&self, manifest: &Manifest) -> Result<Option<Created>> {
        let Some(store) = self.artifacts() else {
            return Ok(None);
        };
        let dir = self.index_dir(&manifest.index_id);
        let (uploaded, created) = transfer::upload_index_then(store, &dir, |m| {
            if self
                .root
                .join(SNAPSHOTS)
                .join(m.snapshot_id.as_str())
                .exists()
            {
                self.publish_snapshot(&m.snapshot_id)
            } else {
                // Built here from a snapshot this data dir no longer holds: nothing to restore.
                Ok(())
            }
        })?;
        if uploaded.content_digest != manifest.content_digest {
            return Err(StoreError::Corrupt {
                id: manifest.index_id.to_string(),
                problems: format!(
                    "the data dir holds build {} while {} was published; not uploaded",
                    uploaded.content_digest, manifest.content_digest
                ),
            });
        }
        tracing::info!(index = %manifest.index_id, store = store.location(), ?created, "published");
        Ok(Some(created))
    }

    /// The manifest the shared store committed for `manifest`'s build (`None` without a store,
    /// or when it holds none).
    pub(crate) fn committed_manifest(&self, manifest: &Manifest) -> Result<Option<Manifest>> {
        match self.artifacts() {
            Some(store) => {
                transfer::committed_manifest(store, &manifest.index_id, &manifest.content_digest)
            }
            None => Ok(None),
        }
    }

    /// Record a new index in the registry, with its audit event. The registry keeps the first
    /// record of an id (a rebuild after a delete, or another builder first, records nothing).
    /// A build with other bytes that loses so, with a shared store, is removed from the store
    /// (when this call `uploaded` it) and from this data dir, so that this machine, like every
    /// other, serves the recorded build (fetched on first use): the recorded manifest then.
    pub(crate) fn record_build(
        &self,
        m: &Manifest,
        actor: &str,
        uploaded: Option<Created>,
    ) -> Result<Option<Manifest>> {
        let draft = AuditDraft {
            actor: actor.to_owned(),
            action: "index.build".into(),
            target: m.index_id.to_string(),
            before: serde_json::Value::Null,
            after: serde_json::json!({ "content_digest": m.content_digest }),
            reason: String::new(),
            evidence: serde_json::json!({
                "snapshot_id": m.snapshot_id,
                "spec": m.spec,
                "embedding_digest": m.embedding.digest,
                "permission_digest": m.permission_digest,
                "chunks": m.counts.chunks,
            }),
        };
        match self.registry.put_manifest(m, draft)? {
            Published::Recorded(_) => {}
            Published::Exists { content_digest } if content_digest == m.content_digest => {
                tracing::debug!(index = %m.index_id, "the registry holds this index already");
            }
            Published::Exists { content_digest } => {
                tracing::warn!(
                    index = %m.index_id,
                    registry_digest = %content_digest,
                    built_digest = %m.content_digest,
                    "the registry holds an earlier build of this index with other bytes; its record is kept"
                );
                if uploaded == Some(Created::Created) {
                    self.withdraw_index(&m.index_id, &m.content_digest)?;
                }
                if uploaded.is_some() {
                    self.drop_local_build(&m.index_id)?;
                    return self.registry.manifest(&m.index_id);
                }
            }
        }
        Ok(None)
    }

    /// Upload stored snapshot `id` to the shared store, if there is one and it lacks it. While
    /// GC (on any machine) is deleting it there, wait until it has finished, then upload it
    /// again (see [`tombstone`]).
    pub(crate) fn publish_snapshot(&self, id: &SnapshotId) -> Result<()> {
        if let Some(store) = self.artifacts() {
            tombstone::await_clear(store, id, tombstone::WAIT)?;
            let dir = self.root.join(SNAPSHOTS).join(id.as_str());
            transfer::upload_snapshot(store, &dir, id)?;
        }
        Ok(())
    }

    /// Remove this process's upload of a build the registry did not record (another builder
    /// recorded the id first): nothing refers to it.
    pub(crate) fn withdraw_index(&self, id: &IndexId, digest: &str) -> Result<()> {
        if let Some(store) = self.artifacts() {
            transfer::remove_index_build(store, id, digest)?;
            tracing::info!(index = %id, digest, "another build was recorded first; upload removed");
        }
        Ok(())
    }

    /// Remove this data dir's copy of index `id` (another build of it was recorded first):
    /// closed and moved out of `indexes/` in one rename, so the next use fetches the recorded
    /// build.
    pub(crate) fn drop_local_build(&self, id: &IndexId) -> Result<()> {
        self.cache().close(id);
        self.remove_index_dir(id)?;
        tracing::info!(index = %id, "another build was recorded first; local copy removed");
        Ok(())
    }

    /// Make sure index `id` is in the data dir, fetching it from the shared store when it is
    /// not: the build `digest`, else the one the registry records, else the store's only
    /// build of the id. A fetched manifest must equal the registry's record of that build
    /// (the content digest covers only the file list, not `counts`, `embedding` or
    /// `permission_digest`). An index GC has marked for deletion is not fetched. Its
    /// directory.
    pub fn fetch_index(&self, id: &IndexId, digest: Option<&str>) -> Result<PathBuf> {
        let target = self.index_dir(id);
        if target.exists() {
            return Ok(target);
        }
        let not_found = || StoreError::NotFound {
            kind: "index",
            id: id.to_string(),
        };
        let Some(store) = self.artifacts() else {
            return Err(not_found());
        };
        self.refuse_marked(id)?;
        let recorded = self.registry.manifest(id)?;
        // One fetch at a time per process: a second caller of the same id finds it here.
        let _one = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        if target.exists() {
            return Ok(target);
        }
        let digest = match (digest, &recorded) {
            (Some(digest), _) => digest.to_owned(),
            (None, Some(recorded)) => recorded.content_digest.clone(),
            (None, None) => only_build(store, id)?.ok_or_else(not_found)?,
        };
        let started = std::time::Instant::now();
        let fetched = (|| {
            let scratch = self.scratch("fetch")?;
            let fetched =
                transfer::fetch_index(store, id, &digest, &scratch)?.ok_or_else(not_found)?;
            if let Some(recorded) = recorded.filter(|m| m.content_digest == digest)
                && let Err(refused) = same_as_recorded(store, &fetched, &recorded)
            {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(refused);
            }
            publish_fetched(&scratch, &target)
        })();
        let took = started.elapsed();
        if let Some(on_fetch) = &self.on_fetch {
            on_fetch(id, fetched.as_ref().map(|()| took));
        }
        fetched?;
        tracing::info!(index = %id, %digest, store = store.location(),
            ms = took.as_millis() as u64, "fetched");
        Ok(target)
    }

    /// Call `on_fetch` after every fetch of an index from the shared store, with how long it
    /// took or why it failed (the server's metrics).
    pub fn with_fetch_observer(mut self, on_fetch: OnFetch) -> Self {
        self.on_fetch = Some(on_fetch);
        self
    }

    /// Refuse an index GC has marked for deletion.
    pub(crate) fn refuse_marked(&self, id: &IndexId) -> Result<()> {
        match self.registry.deleting()?.get(id) {
            Some(&at_us) => Err(StoreError::MarkedForDeletion {
                id: id.to_string(),
                marked_at: time_of(at_us),
            }),
            None => Ok(()),
        }
    }

    /// Make sure snapshot `id` is in the data dir, fetching it from the shared store when it
    /// is not.
    pub fn fetch_snapshot(&self, id: &SnapshotId) -> Result<()> {
        let target = self.root.join(SNAPSHOTS).join(id.as_str());
        if target.exists() {
            return Ok(());
        }
        let not_found = || StoreError::NotFound {
            kind: "snapshot",
            id: id.to_string(),
        };
        let store = self.artifacts().ok_or_else(not_found)?;
        let _one = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        let scratch = self.scratch("fetch")?;
        transfer::fetch_snapshot(store, id, &scratch)?.ok_or_else(not_found)?;
        publish_fetched(&scratch, &target)
    }

    /// Index ids in the shared store (none without one), for resolving what the data dir
    /// does not hold.
    pub(crate) fn shared_index_ids(&self) -> Result<Vec<IndexId>> {
        match self.artifacts() {
            Some(store) => transfer::index_ids(store),
            None => Ok(Vec::new()),
        }
    }

    /// Snapshot ids in the shared store (none without one), for resolving what the data dir
    /// does not hold.
    pub(crate) fn shared_snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        match self.artifacts() {
            Some(store) => transfer::snapshot_ids(store),
            None => Ok(Vec::new()),
        }
    }
}

/// The store's one committed build of `id`; several are refused naming them, since which one
/// is the index is the registry's record (fetch one by digest).
fn only_build(store: &dyn ArtifactStore, id: &IndexId) -> Result<Option<String>> {
    let mut builds = transfer::index_builds(store, id)?;
    match builds.len() {
        0 | 1 => Ok(builds.pop()),
        _ => Err(StoreError::ArtifactRefused {
            store: store.location().to_owned(),
            key: format!("{INDEXES}/{id}"),
            reason: format!(
                "holds {} builds ({}); name the content digest to fetch",
                builds.len(),
                builds.join(", ")
            ),
        }),
    }
}

/// A fetched manifest must be the registry's record of the build, field for field; a
/// difference is refused naming the manifest's object and the fields that differ.
fn same_as_recorded(
    store: &dyn ArtifactStore,
    fetched: &Manifest,
    recorded: &Manifest,
) -> Result<()> {
    if fetched == recorded {
        return Ok(());
    }
    let fields = |m: &Manifest| match serde_json::to_value(m) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
        _ => std::collections::BTreeMap::new(),
    };
    let key = format!(
        "{INDEXES}/{}/{}/{}",
        recorded.index_id,
        recorded.content_digest,
        quire_index::MANIFEST_FILE
    );
    let (fetched, recorded) = (fields(fetched), fields(recorded));
    let differing: std::collections::BTreeSet<&String> = fetched
        .keys()
        .chain(recorded.keys())
        .filter(|k| fetched.get(*k) != recorded.get(*k))
        .collect();
    let differing: Vec<&str> = differing.into_iter().map(String::as_str).collect();
    Err(StoreError::ArtifactRefused {
        store: store.location().to_owned(),
        key,
        reason: format!(
            "differs from the registry's record in {}; refused, nothing kept",
            differing.join(", ")
        ),
    })
}

/// Microseconds since the epoch as RFC 3339.
pub(crate) fn time_of(us: u64) -> String {
    i64::try_from(us)
        .ok()
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        .map(|t| t.to_string())
        .unwrap_or_else(|| format!("{us} us after the epoch"))
}
