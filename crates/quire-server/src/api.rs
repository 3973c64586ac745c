//! The service trait every transport implements, and its local implementation over a data dir.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use quire_core::{BuildSpec, IndexId};
use quire_index::{Progress, Query, Response};
use quire_store::{
    BuildOutcome, CorpusFormat, IndexInfo, IndexSummary, RebuildCheck, RetrievalService,
    SnapshotInfo, Store, VerifyReport,
};

use crate::error::{Result, ServiceError};

/// Shared progress sink for builds.
pub type SharedProgress = Arc<dyn Progress + Send + Sync>;

/// Everything a client can ask of quire. The CLI talks to this trait; [`Local`] implements it
/// over a data dir in-process and `Remote` over gRPC, and the gRPC server is a thin adapter
/// onto [`Local`]: one set of semantics, two transports.
#[allow(async_fn_in_trait)]
pub trait QuireApi {
    /// Import the corpus at `path` (on the caller's machine) as a snapshot.
    async fn import(&self, path: &Path, format: Option<CorpusFormat>) -> Result<SnapshotInfo>;
    /// Describe one snapshot (id or unique prefix).
    async fn snapshot(&self, id: &str) -> Result<SnapshotInfo>;
    /// Every snapshot.
    async fn snapshots(&self) -> Result<Vec<SnapshotInfo>>;
    /// Build (or verify and reuse) the index for a snapshot and a spec (TOML; default if none).
    async fn build(
        &self,
        snapshot: &str,
        spec_toml: Option<&str>,
        progress: SharedProgress,
    ) -> Result<BuildOutcome>;
    /// Every index.
    async fn indexes(&self) -> Result<Vec<IndexSummary>>;
    /// One index's manifest.
    async fn index(&self, target: &str) -> Result<IndexInfo>;
    /// Recompute an index's digest.
    async fn verify(&self, target: &str) -> Result<VerifyReport>;
    /// Rebuild an index from its snapshot and spec and compare.
    async fn rebuild_check(&self, target: &str, progress: SharedProgress) -> Result<RebuildCheck>;
    /// Retrieve from an index.
    async fn retrieve(&self, target: &str, query: Query) -> Result<Response>;
}

/// [`QuireApi`] over a data dir in this process.
#[derive(Clone)]
pub struct Local {
    store: Arc<Store>,
    names: Arc<BTreeMap<String, IndexId>>,
}

/// Parse a spec given as TOML text (the default spec when `None`).
pub fn parse_spec(spec_toml: Option<&str>, origin: &str) -> Result<BuildSpec> {
    match spec_toml {
        None => Ok(BuildSpec::default()),
        Some(text) => Ok(BuildSpec::from_toml(text, origin)?),
    }
}

impl Local {
    /// Serve `store`, with `names` resolving to index ids (e.g. `handbook` in demo mode).
    pub fn new(store: Arc<Store>, names: BTreeMap<String, IndexId>) -> Self {
        Self {
            store,
            names: Arc::new(names),
        }
    }

    /// The data dir.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Resolve a target: a configured name, an index id, or a unique id prefix.
    pub fn resolve(&self, target: &str) -> Result<(IndexId, Option<String>)> {
        if let Some(id) = self.names.get(target) {
            return Ok((id.clone(), Some(target.to_owned())));
        }
        Ok((self.store.resolve_index(target)?, None))
    }

    /// Run blocking store work off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Local) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        // Carry the request's span onto the blocking thread, so step spans nest under it.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| f(&this)))
            .await
            .map_err(|e| ServiceError::Internal(format!("worker failed: {e}")))?
    }

    /// Import an uploaded corpus file.
    pub async fn import_upload(
        &self,
        bytes: Vec<u8>,
        format: Option<CorpusFormat>,
        name: String,
    ) -> Result<SnapshotInfo> {
        self.blocking(move |l| Ok(l.store.import_upload(&bytes, format, &name)?))
            .await
    }
}

impl QuireApi for Local {
    async fn import(&self, path: &Path, format: Option<CorpusFormat>) -> Result<SnapshotInfo> {
        let path = path.to_path_buf();
        self.blocking(move |l| Ok(l.store.import(&path, format)?))
            .await
    }

    async fn snapshot(&self, id: &str) -> Result<SnapshotInfo> {
        let id = id.to_owned();
        self.blocking(move |l| Ok(l.store.snapshot(&l.store.resolve_snapshot(&id)?)?))
            .await
    }

    async fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        self.blocking(|l| Ok(l.store.snapshots()?)).await
    }

    async fn build(
        &self,
        snapshot: &str,
        spec_toml: Option<&str>,
        progress: SharedProgress,
    ) -> Result<BuildOutcome> {
        let spec = parse_spec(spec_toml, "spec")?;
        let snapshot = snapshot.to_owned();
        self.blocking(move |l| {
            let id = l.store.resolve_snapshot(&snapshot)?;
            Ok(l.store.build(&id, &spec, progress.as_ref())?)
        })
        .await
    }

    async fn indexes(&self) -> Result<Vec<IndexSummary>> {
        self.blocking(|l| Ok(l.store.indexes()?)).await
    }

    async fn index(&self, target: &str) -> Result<IndexInfo> {
        let target = target.to_owned();
        self.blocking(move |l| {
            let (id, _) = l.resolve(&target)?;
            Ok(l.store.index_info(&id)?)
        })
        .await
    }

    async fn verify(&self, target: &str) -> Result<VerifyReport> {
        let target = target.to_owned();
        self.blocking(move |l| {
            let (index_id, _) = l.resolve(&target)?;
            let verification = l.store.verify(&index_id)?;
            Ok(VerifyReport {
                index_id,
                verification,
            })
        })
        .await
    }

    async fn rebuild_check(&self, target: &str, progress: SharedProgress) -> Result<RebuildCheck> {
        let target = target.to_owned();
        self.blocking(move |l| {
            let (id, _) = l.resolve(&target)?;
            Ok(l.store.rebuild_check(&id, progress.as_ref())?)
        })
        .await
    }

    async fn retrieve(&self, target: &str, query: Query) -> Result<Response> {
        let target = target.to_owned();
        self.blocking(move |l| {
            let (id, alias) = l.resolve(&target)?;
            let mut response = l.store.retrieve(id.as_str(), &query)?;
            response.lineage.alias = alias;
            Ok(response)
        })
        .await
    }
}
