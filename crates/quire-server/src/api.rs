//! The service trait every transport implements, and its local implementation over a data dir.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::shadow::{Shadows, compare};
use quire_core::BuildSpec;
use quire_index::{Progress, Query, Response};
use quire_store::{
    BuildOutcome, CorpusFormat, IndexInfo, IndexSummary, RebuildCheck, SnapshotInfo, Store,
    VerifyReport, Via,
};
use tokio::sync::mpsc;

use crate::cancel::{Cancel, CancellableProgress, RequestScope};
use crate::error::{Result, ServiceError};
use crate::metrics::Metrics;
use crate::observe::Observations;
use crate::outcomes::{Outcomes, Served};
use crate::request_id::next_request_id;
use crate::sampler::{Answered, Sampler};
use quire_index::cpu::CpuClock;
use quire_release::Intent;
use quire_release::outcome::{FeedbackLabel, FeedbackRecord};

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
    /// Retrieve from an index id, a unique prefix, `ALIAS` or `ALIAS@REVISION`. Through an
    /// alias with a canary, `routing_key` picks the arm (a fresh key per request when `None`).
    async fn retrieve(
        &self,
        target: &str,
        query: Query,
        routing_key: Option<String>,
    ) -> Result<Response> {
        let meta = RequestMeta {
            routing_key,
            intent: None,
        };
        self.retrieve_with(target, query, meta).await
    }
    /// [`QuireApi::retrieve`] with the request's metadata: its routing key and intent label.
    async fn retrieve_with(
        &self,
        target: &str,
        query: Query,
        meta: RequestMeta,
    ) -> Result<Response>;
}

/// What a Retrieve request says about itself besides the query.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    /// Sticks the caller to one arm of an alias's canary (a fresh key per request when `None`).
    pub routing_key: Option<String>,
    /// What the request is for: sampling and canary reports are stratified by it.
    pub intent: Option<Intent>,
}

/// Shadow queries in flight at most, per server.
pub const SHADOW_SLOTS: usize = 4;

/// [`QuireApi`] over a data dir in this process.
#[derive(Clone)]
pub struct Local {
    store: Arc<Store>,
    actor: Arc<str>,
    shadows: Arc<Shadows>,
    /// Queries that may compute at once; the others wait their turn, first come first served.
    query_slots: Arc<tokio::sync::Semaphore>,
    metrics: Option<Arc<Metrics>>,
    sampler: Option<Arc<Sampler>>,
    outcomes: Option<Arc<Outcomes>>,
    observations: Option<Arc<Observations>>,
}

/// Parse a spec given as TOML text (the default spec when `None`).
pub fn parse_spec(spec_toml: Option<&str>, origin: &str) -> Result<BuildSpec> {
    match spec_toml {
        None => Ok(BuildSpec::default()),
        Some(text) => Ok(BuildSpec::from_toml(text, origin)?),
    }
}

/// Who acts in the CLI's local mode: `local:<login name>`.
pub fn local_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("local:{user}")
}

impl Local {
    /// Serve `store`, acting as `actor` (recorded in the audit log for every change).
    pub fn new(store: Arc<Store>, actor: &str) -> Self {
        Self {
            store,
            actor: actor.into(),
            shadows: Arc::new(Shadows::new(SHADOW_SLOTS)),
            query_slots: Arc::new(tokio::sync::Semaphore::new(
                crate::config::Limits::default().query_threads(),
            )),
            metrics: None,
            sampler: None,
            outcomes: None,
            observations: None,
        }
    }

    /// Let `threads` Retrieve requests compute at once (`[limits] query_threads`); the others
    /// wait their turn in arrival order.
    pub fn with_query_threads(mut self, threads: usize) -> Self {
        self.query_slots = Arc::new(tokio::sync::Semaphore::new(threads.max(1)));
        self
    }

    /// Write samples and feedback to the registry through `queue` (the server's writer takes
    /// its receiving end).
    pub fn with_observations(mut self, queue: Arc<Observations>) -> Self {
        self.observations = Some(queue);
        self
    }

    /// The queue of records for the registry, when this service records any.
    pub fn observations(&self) -> Option<&Arc<Observations>> {
        self.observations.as_ref()
    }

    /// Remember answered requests for feedback with `outcomes` (the server's).
    pub fn with_outcomes(mut self, outcomes: Arc<Outcomes>) -> Self {
        self.outcomes = Some(outcomes);
        self
    }

    /// Take feedback on a request this server answered, as this service's actor.
    pub(crate) fn take_feedback(
        &self,
        request_id: &str,
        success: bool,
        label: Option<FeedbackLabel>,
    ) -> Result<FeedbackRecord> {
        let outcomes = self.outcomes.as_ref().ok_or_else(|| {
            ServiceError::FailedPrecondition(
                "feedback goes to the server that answered the request (it remembers recent \
                 request ids); send it with --server"
                    .into(),
            )
        })?;
        outcomes.feedback(&self.actor, request_id, success, label)
    }

    /// Sample answered requests with `sampler` (the server's; the CLI's local mode does not).
    pub fn with_sampler(mut self, sampler: Arc<Sampler>) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// The metrics this service reports into, if any.
    pub(crate) fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// The sampler, when this service samples.
    pub fn sampler(&self) -> Option<&Arc<Sampler>> {
        self.sampler.as_ref()
    }

    /// The same service acting as `actor` (a gRPC caller's token name).
    pub fn as_actor(&self, actor: &str) -> Self {
        Self {
            actor: actor.into(),
            ..self.clone()
        }
    }

    /// Report shadow comparisons into `metrics` too.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Who this service acts as.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The data dir.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The shadow comparison statistics.
    pub fn shadows(&self) -> &Arc<Shadows> {
        &self.shadows
    }

    /// Resolve a target that must name one index: an index id, a unique prefix, or an
    /// alias (its primary) or `ALIAS@REVISION`.
    pub fn resolve(&self, target: &str) -> Result<quire_core::IndexId> {
        Ok(self.store.resolve_primary(target)?)
    }

    /// Run the same query on the alias's shadow index in the background, if a slot is free; its
    /// CPU is charged to `request_id`.
    fn shadow(&self, via: &Via, query: Query, primary: &Response, request_id: String) {
        let Some(shadow) = via.shadow.clone() else {
            return;
        };
        let Some(slot) = self.shadows.try_slot(&via.alias, &shadow) else {
            if let Some(m) = &self.metrics {
                m.record_shadow_dropped(&via.alias);
            }
            return;
        };
        let primary_docs: Vec<String> = primary.hits.iter().map(|h| h.doc_id.clone()).collect();
        let primary_us = primary.timings_us.total as f64;
        let (this, alias) = (self.clone(), via.alias.clone());
        // Under the request's span (traces: the shadow query may end after the answer).
        let span = quire_index::trace::step(
            &tracing::Span::current(),
            || tracing::info_span!("shadow", alias = %alias, index = %shadow, hits = tracing::field::Empty),
        );
        tokio::task::spawn_blocking(move || {
            let _span = span.entered();
            let _slot = slot;
            let started = Instant::now();
            let cpu = CpuClock::start();
            let answer = this
                .store
                .open_index(&shadow)
                .and_then(|index| Ok(index.search(&query)?));
            let cpu_us = cpu.elapsed_us();
            if let Some(o) = &this.outcomes {
                o.add_shadow_cpu(&request_id, cpu_us);
            }
            if let Some(m) = &this.metrics {
                m.record_cpu("shadow", cpu_us);
            }
            match answer {
                Ok(answer) => {
                    tracing::Span::current().record("hits", answer.hits.len());
                    let docs: Vec<String> = answer.hits.iter().map(|h| h.doc_id.clone()).collect();
                    let shadow_us = started.elapsed().as_micros() as f64;
                    let c = compare(&primary_docs, &docs, shadow_us - primary_us);
                    this.shadows.record(&alias, &shadow, c);
                    if let Some(m) = &this.metrics {
                        m.record_shadow(&alias, &c);
                    }
                }
                Err(e) => {
                    tracing::warn!(alias, shadow = %shadow, error = %e, "shadow query failed");
                    this.shadows.record_failure(&alias, &shadow);
                }
            }
        });
    }

    /// Run blocking store work off the async runtime.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Local) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.cancellable(move |l, _| f(l)).await
    }

    /// Run blocking work off the async runtime, within the current request's scope: the work
    /// holds the request's concurrency permit until it ends, and `f` gets the request's
    /// [`Cancel`] flag, raised once the request is gone (see [`crate::cancel`]).
    pub(crate) async fn cancellable<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Local, &Cancel) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        let scope = RequestScope::current();
        // Carry the request's span onto the blocking thread, so step spans nest under it.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| f(&this, &scope.cancel)))
            .await
            .map_err(|e| ServiceError::Internal(format!("worker failed: {e}")))?
    }

    /// Start importing an uploaded corpus file (JSONL or BEIR) named `name` in errors: the
    /// returned sink spools chunks to disk on a blocking thread as they arrive, refusing an
    /// over-long line at once; [`UploadSink::finish`] imports what was sent.
    pub fn begin_upload(&self, format: Option<CorpusFormat>, name: String) -> UploadSink {
        let (tx, mut rx) = mpsc::channel::<Option<Vec<u8>>>(4);
        let this = self.clone();
        let span = tracing::Span::current();
        let task = tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let mut upload = this.store.begin_upload(&name)?;
                loop {
                    match rx.blocking_recv() {
                        Some(Some(chunk)) => upload.write(&chunk)?,
                        Some(None) => {
                            return Ok(this.store.import_upload_as(upload, format, &this.actor)?);
                        }
                        None => {
                            return Err(ServiceError::Unavailable(
                                "the upload ended before it was complete".into(),
                            ));
                        }
                    }
                }
            })
        });
        UploadSink { tx, task }
    }
}

/// An upload in progress (see [`Local::begin_upload`]). Dropping it unfinished discards what
/// was spooled.
pub struct UploadSink {
    tx: mpsc::Sender<Option<Vec<u8>>>,
    task: tokio::task::JoinHandle<Result<SnapshotInfo>>,
}

impl UploadSink {
    /// Spool the next chunk. Fails with the spooler's error (an over-long line, a full disk)
    /// once it has stopped.
    pub async fn send(&mut self, chunk: Vec<u8>) -> Result<()> {
        if self.tx.send(Some(chunk)).await.is_err() {
            return Err(self.outcome().await.err().unwrap_or_else(|| {
                ServiceError::Internal("the upload spooler stopped early".into())
            }));
        }
        Ok(())
    }

    /// Import everything sent.
    pub async fn finish(mut self) -> Result<SnapshotInfo> {
        // A closed channel means the spooler already stopped; its outcome says why.
        let _ = self.tx.send(None).await;
        self.outcome().await
    }

    async fn outcome(&mut self) -> Result<SnapshotInfo> {
        (&mut self.task)
            .await
            .map_err(|e| ServiceError::Internal(format!("upload worker failed: {e}")))?
    }
}

impl QuireApi for Local {
    async fn import(&self, path: &Path, format: Option<CorpusFormat>) -> Result<SnapshotInfo> {
        let path = path.to_path_buf();
        self.blocking(move |l| Ok(l.store.import_as(&path, format, &l.actor)?))
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
            Ok(l.store.build_as(&id, &spec, progress.as_ref(), &l.actor)?)
        })
        .await
    }

    async fn indexes(&self) -> Result<Vec<IndexSummary>> {
        self.blocking(|l| Ok(l.store.indexes()?)).await
    }

    async fn index(&self, target: &str) -> Result<IndexInfo> {
        let target = target.to_owned();
        self.blocking(move |l| {
            let id = l.resolve(&target)?;
            Ok(l.store.index_info(&id)?)
        })
        .await
    }

    async fn verify(&self, target: &str) -> Result<VerifyReport> {
        let target = target.to_owned();
        self.blocking(move |l| {
            let index_id = l.resolve(&target)?;
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
        self.cancellable(move |l, cancel| {
            let id = l.resolve(&target)?;
            let progress = CancellableProgress {
                inner: progress,
                cancel: cancel.clone(),
            };
            Ok(l.store.rebuild_check(&id, &progress)?)
        })
        .await
    }

    async fn retrieve_with(
        &self,
        target: &str,
        query: Query,
        meta: RequestMeta,
    ) -> Result<Response> {
        let target = target.to_owned();
        let routing_key = meta.routing_key.unwrap_or_else(fresh_routing_key);
        let slot = self
            .query_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ServiceError::Internal(format!("query slots closed: {e}")))?;
        let (mut response, shadow) = self
            .blocking(move |l| {
                let _slot = slot;
                let resolved = l.store.resolve_target(&target, &routing_key)?;
                let mut response = l.store.open_index(&resolved.index)?.search(&query)?;
                if let Some(via) = &resolved.via {
                    response.lineage.alias = Some(via.alias.clone());
                    response.lineage.revision = Some(via.revision);
                    response.lineage.arm = Some(via.arm);
                }
                Ok((response, resolved.via.map(|via| (via, query))))
            })
            .await?;
        let request_id = next_request_id();
        response.request_id = Some(request_id.clone());
        if let Some((via, query)) = shadow {
            if let Some(sampler) = &self.sampler {
                sampler.offer(&Answered {
                    request_id: &request_id,
                    via: &via,
                    query: &query,
                    intent: meta.intent.as_ref(),
                    response: &response,
                });
            }
            if let Some(outcomes) = &self.outcomes {
                outcomes.remember(&Served {
                    request_id: &request_id,
                    caller: &self.actor,
                    via: &via,
                    intent: meta.intent.as_ref(),
                    response: &response,
                });
            }
            self.shadow(&via, query, &response, request_id);
        }
        Ok(response)
    }
}

/// A routing key for a request that brought none: unique per request, so canary traffic
/// splits by request.
fn fresh_routing_key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "request:{}:{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
