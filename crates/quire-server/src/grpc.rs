//! Thin gRPC adapters: authenticate, apply limits, convert, call [`Local`], convert back.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use quire_proto::convert::{self, RetrieveParams};
use quire_proto::pb;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::access_log::{AccessEntry, AccessLog};
use crate::api::{Local, QuireApi, RequestMeta, SharedProgress};
use crate::auth::{Auth, Caller, Role};
use crate::build_progress::{DeadlineProgress, StreamProgress, client_deadline};
use crate::cancel::RequestScope;
use crate::config::{ImportRoots, Limits, ServerConfig};
use crate::denials::{Denial, Denials, UNKNOWN_TOKEN, jwt_refused};
use crate::error::{Result, ServiceError};
use crate::identity::describe;
use crate::jwt::JwtVerifier;
use crate::metrics::Metrics;
use quire_core::Reader;

/// Shared state of the gRPC services.
pub struct Server {
    pub(crate) local: Local,
    auth: Auth,
    jwt: Option<JwtVerifier>,
    access_log: Option<AccessLog>,
    pub(crate) limits: Limits,
    pub(crate) import_roots: ImportRoots,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    running_build: Arc<Semaphore>,
    waiting_builds: AtomicUsize,
    next_request: AtomicU64,
    trace_sampler: crate::telemetry::TraceSampler,
    denials: Denials,
    /// A read-only replica: refuses every RPC that changes something.
    replica: bool,
}

/// The gRPC services; cheap to clone.
#[derive(Clone)]
pub struct Grpc(Arc<Server>);

impl Grpc {
    /// Services over `local`, checking the tokens of `config`, enforcing its limits, reading
    /// server paths only under its import roots and writing its access log (a file that
    /// cannot be opened is FAILED_PRECONDITION, naming it).
    pub fn new(local: Local, config: &ServerConfig, metrics: Arc<Metrics>) -> Result<Self> {
        let limits = config.limits.clone();
        let permits = Arc::new(Semaphore::new(limits.max_concurrent_requests));
        let access_log = config
            .access_log
            .clone()
            .map(|c| {
                let path = c.path.display().to_string();
                AccessLog::open(c).map_err(|e| {
                    ServiceError::FailedPrecondition(format!("access log {path}: {e}"))
                })
            })
            .transpose()?;
        Ok(Self(Arc::new(Server {
            local,
            auth: Auth::new(config.tokens.clone()),
            jwt: config.jwt.clone(),
            access_log,
            limits,
            import_roots: config.import_roots.clone(),
            metrics,
            permits,
            running_build: Arc::new(Semaphore::new(1)),
            waiting_builds: AtomicUsize::new(0),
            next_request: AtomicU64::new(1),
            trace_sampler: crate::telemetry::TraceSampler::new(
                config.telemetry.otlp_endpoint.is_some(),
                config.telemetry.sample_ratio,
            ),
            denials: Denials::default(),
            replica: config.replica.enabled,
        })))
    }

    /// Record the refusal counts of every window that has passed by `now` (of all windows with
    /// `None`, at shutdown) in the audit log; see [`crate::denials`].
    pub async fn close_denial_windows(&self, now: Option<Instant>) {
        let drafts = self.0.denials.close(now);
        self.0.record_denials(drafts).await;
    }

    /// The state every transport's handlers share.
    pub(crate) fn server(&self) -> &Arc<Server> {
        &self.0
    }

    /// The data dir behind the services.
    pub fn store(&self) -> &Arc<quire_store::Store> {
        self.0.local.store()
    }

    /// The request-size ceiling handed to tonic: generous, so that quire's own check (which
    /// answers RESOURCE_EXHAUSTED and names the limit) is the one callers meet.
    pub fn decoding_ceiling(&self) -> usize {
        self.0
            .limits
            .max_request_bytes
            .saturating_mul(4)
            .max(16 << 20)
    }

    pub(crate) fn status_code(result: &Result<impl Sized>) -> Code {
        match result {
            Ok(_) => Code::Ok,
            Err(e) => e.code(),
        }
    }

    /// Run a unary call: the size limit on its message, then [`Server::handle`].
    pub(crate) async fn unary<Req, Resp, F, Fut>(
        &self,
        rpc: &'static str,
        needed: Role,
        request: Request<Req>,
        call: F,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Message,
        F: FnOnce(Arc<Server>, Caller, Req) -> Fut,
        Fut: Future<Output = Result<Resp>>,
    {
        let (metadata, _, message) = request.into_parts();
        let handled = self
            .0
            .clone()
            .handle(rpc, needed, &metadata, |s, caller| async move {
                let size = message.encoded_len();
                if size > s.limits.max_request_bytes {
                    return Err(ServiceError::ResourceExhausted(format!(
                        "request of {size} bytes exceeds the limit of {} bytes",
                        s.limits.max_request_bytes
                    )));
                }
                call(s, caller, message).await
            });
        handled.await.map(Response::new).map_err(Status::from)
    }
}

impl Server {
    /// Run one request of any transport (gRPC, HTTP): request id and span, concurrency permit,
    /// authentication, deadline, metrics. `call` gets the caller once it is authorized.
    pub(crate) async fn handle<Resp, F, Fut>(
        self: Arc<Self>,
        rpc: &'static str,
        needed: Role,
        metadata: &tonic::metadata::MetadataMap,
        call: F,
    ) -> Result<Resp>
    where
        F: FnOnce(Arc<Server>, Caller) -> Fut,
        Fut: Future<Output = Result<Resp>>,
    {
        let started = Instant::now();
        let request_id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let span = if self.trace_sampler.sample(metadata) {
            tracing::info_span!("rpc", rpc, request_id)
        } else {
            tracing::info_span!(target: crate::telemetry::UNTRACED_TARGET, "rpc", rpc, request_id)
        };
        crate::telemetry::continue_trace(&span, metadata);
        let result = async {
            let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
                ServiceError::ResourceExhausted(format!(
                    "more than {} requests in flight",
                    self.limits.max_concurrent_requests
                ))
            })?;
            let caller = self.authorize(metadata, rpc, needed).await?;
            let deadline = Duration::from_millis(self.limits.request_timeout_ms);
            // Blocking work the call starts holds the permit until it ends, and stops once
            // this future is gone (see `cancel`).
            let (scope, _raise_when_gone) = RequestScope::new(Some(permit));
            scope
                .run(tokio::time::timeout(deadline, call(self.clone(), caller)))
                .await
                .map_err(|_| {
                    ServiceError::DeadlineExceeded(format!(
                        "{rpc} took longer than {} ms",
                        deadline.as_millis()
                    ))
                })?
        }
        .instrument(span.clone())
        .await;
        let code = Grpc::status_code(&result);
        span.in_scope(|| tracing::info!(code = ?code, elapsed_us = started.elapsed().as_micros() as u64, "done"));
        self.metrics.record_request(rpc, code, started.elapsed());
        result
    }

    /// A Retrieve as `caller`: the server's limits on `k` and the query, the principal it
    /// reads as (access-logged), then the query through the alias or index it names.
    pub(crate) async fn retrieve(
        &self,
        caller: &Caller,
        mut params: RetrieveParams,
    ) -> Result<quire_index::Response> {
        if params.query.k > self.limits.max_k as usize {
            return Err(ServiceError::InvalidArgument(format!(
                "field `k`: {} exceeds this server's limit of {}",
                params.query.k, self.limits.max_k
            )));
        }
        if params.query.text.len() > self.limits.max_query_bytes {
            return Err(ServiceError::InvalidArgument(format!(
                "field `query`: {} bytes exceeds this server's limit of {}",
                params.query.text.len(),
                self.limits.max_query_bytes
            )));
        }
        params.query.reader =
            self.principal("Retrieve", caller, &params.target, params.query.reader)?;
        // Without a routing key, each request is routed on its own.
        let meta = RequestMeta {
            routing_key: Some(params.routing_key).filter(|k| !k.is_empty()),
            intent: params.intent,
        };
        // Ids, names and counts only: never the query or document text.
        macro_rules! retrieve_span {
            ($target:expr) => {
                tracing::info_span!(
                    target: $target,
                    "retrieve",
                    target = %params.target,
                    k = params.query.k,
                    mode = params.query.mode.as_str(),
                    index = tracing::field::Empty,
                    alias = tracing::field::Empty,
                    revision = tracing::field::Empty,
                    arm = tracing::field::Empty,
                    hits = tracing::field::Empty,
                )
            };
        }
        let span = if quire_index::trace::within_trace(&tracing::Span::current()) {
            retrieve_span!(module_path!())
        } else {
            retrieve_span!(quire_index::trace::UNTRACED_TARGET)
        };
        // As the caller, so that only its own feedback counts for the request.
        let response = self
            .local
            .as_actor(&caller.name)
            .retrieve_with(&params.target, params.query, meta)
            .instrument(span.clone())
            .await?;
        span.record("index", response.lineage.index_id.as_str());
        span.record("hits", response.hits.len());
        if let Some(alias) = &response.lineage.alias {
            span.record("alias", alias.as_str());
        }
        if let Some(revision) = response.lineage.revision {
            span.record("revision", revision);
        }
        if let Some(arm) = response.lineage.arm {
            span.record("arm", arm.as_str());
        }
        self.metrics.record_retrieval(
            response.lineage.index_id.as_str(),
            &response.timings_us,
            &response.cpu_us,
        );
        Ok(response)
    }
}

impl Server {
    /// Authenticate and authorize. A known token refused for its role is recorded in the audit
    /// log as `auth.denied` (who tried what), a request without a known token as
    /// `auth.unauthenticated`; both at a bounded rate (see [`crate::denials`]).
    pub(crate) async fn authorize(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        rpc: &'static str,
        needed: Role,
    ) -> Result<Caller> {
        let result = self.auth.authorize(metadata, rpc, needed);
        // Only a refusal identifies the token a second time (a success already has its caller).
        let denial = match &result {
            Err(ServiceError::PermissionDenied(message)) => {
                self.auth.identify(metadata).map(|caller| Denial {
                    actor: caller.name,
                    action: "auth.denied",
                    kind: rpc,
                    target: rpc.to_owned(),
                    evidence: serde_json::json!({
                        "message": message,
                        "needed": format!("{needed:?}").to_lowercase(),
                    }),
                })
            }
            Err(ServiceError::Unauthenticated(message)) => Some(Denial {
                actor: UNKNOWN_TOKEN.to_owned(),
                action: "auth.unauthenticated",
                kind: rpc,
                target: rpc.to_owned(),
                evidence: serde_json::json!({ "message": message }),
            }),
            _ => None,
        };
        // A replica's registry is read-only: its refusals are in its logs, not the audit log.
        if let Some(denial) = denial.filter(|_| !self.replica) {
            self.audit_denied(denial).await;
        }
        let caller = result?;
        crate::replica::refuse_write(self.replica, rpc)?;
        Ok(caller)
    }

    /// Record a refused request in the audit log, unless its (caller, kind) was refused
    /// already in the current window, which only counts it.
    pub(crate) async fn audit_denied(&self, denial: Denial) {
        let drafts = self.denials.note(denial, Instant::now());
        self.record_denials(drafts).await;
    }

    async fn record_denials(&self, drafts: Vec<quire_store::AuditDraft>) {
        record_denials(self.local.store().clone(), drafts).await;
    }
}

/// Write refusals' audit events to `store` (on a blocking thread).
async fn record_denials(store: Arc<quire_store::Store>, drafts: Vec<quire_store::AuditDraft>) {
    if drafts.is_empty() {
        return;
    }
    let recorded = tokio::task::spawn_blocking(move || {
        drafts
            .into_iter()
            .try_for_each(|draft| store.audit(draft).map(drop))
    })
    .await;
    if !matches!(recorded, Ok(Ok(()))) {
        tracing::error!("could not record a denied request in the audit log");
    }
}

impl Server {
    /// The principal `caller`'s request reads as, given the one it asserted (see
    /// [`crate::identity::resolve`]), recorded whether allowed or refused in the access log:
    /// the tracing target `quire_access` and, when configured, the access log file (rpc,
    /// token, role, mechanism, effective and asserted principal, and the target as
    /// `resource`).
    pub(crate) fn principal(
        &self,
        rpc: &'static str,
        caller: &Caller,
        target: &str,
        requested: Reader,
    ) -> Result<Reader> {
        let asserted = describe(&requested);
        let resolved = caller.effective_reader(requested, self.jwt.as_ref());
        let entry = AccessEntry {
            time: jiff::Timestamp::now().to_string(),
            rpc: rpc.to_owned(),
            token: caller.name.clone(),
            role: format!("{:?}", caller.role).to_lowercase(),
            mechanism: resolved.as_ref().ok().map(|(_, m)| m.as_str().to_owned()),
            principal: resolved.as_ref().ok().map(|(r, _)| describe(r)),
            asserted,
            resource: target.to_owned(),
            allowed: resolved.is_ok(),
            reason: resolved.as_ref().err().map(ToString::to_string),
        };
        trace_access(&entry);
        if let Some(log) = &self.access_log {
            log.record(&entry);
        }
        if let Err(ServiceError::Unauthenticated(message)) = &resolved
            && !self.replica
        {
            // A JWT refused (invalid, or missing where required): audited at a bounded rate,
            // off this thread (the store writes block).
            let drafts = self
                .denials
                .note(jwt_refused(caller, rpc, message), Instant::now());
            tokio::spawn(record_denials(self.local.store().clone(), drafts));
        }
        resolved.map(|(reader, _)| reader)
    }
}

/// An access on the tracing target [`ACCESS_LOG`].
fn trace_access(e: &AccessEntry) {
    let AccessEntry {
        rpc,
        token,
        role,
        asserted,
        resource,
        ..
    } = e;
    match (&e.mechanism, &e.principal, &e.reason) {
        (Some(mechanism), Some(principal), _) => tracing::info!(
            target: ACCESS_LOG, rpc, token, role, mechanism, principal, asserted, resource,
            allowed = true, "access"
        ),
        (_, _, reason) => tracing::info!(
            target: ACCESS_LOG, rpc, token, role, asserted, resource, allowed = false,
            reason = reason.as_deref().unwrap_or_default(), "access refused"
        ),
    }
}

/// The tracing target of the access log: one event per request that reads documents.
pub const ACCESS_LOG: &str = "quire_access";

/// A change's reason, which may not be empty.
pub(crate) fn reason(text: String) -> Result<String> {
    if text.trim().is_empty() {
        return Err(ServiceError::InvalidArgument(
            "field `reason`: is empty; every change needs a reason".into(),
        ));
    }
    Ok(text)
}

/// A request field the client got wrong: the caller's error.
pub(crate) fn invalid_request(e: convert::InvalidField) -> ServiceError {
    ServiceError::InvalidArgument(e.to_string())
}

#[tonic::async_trait]
impl pb::retrieval_service_server::RetrievalService for Grpc {
    async fn retrieve(
        &self,
        request: Request<pb::RetrieveRequest>,
    ) -> Result<Response<pb::RetrieveResponse>, Status> {
        self.unary(
            "Retrieve",
            Role::Reader,
            request,
            |s, caller, message| async move {
                let params = RetrieveParams::try_from(message).map_err(invalid_request)?;
                let explain = params.explain;
                let response = s.retrieve(&caller, params).await?;
                Ok(convert::response_to_pb(response, explain))
            },
        )
        .await
    }

    async fn feedback(
        &self,
        request: Request<pb::FeedbackRequest>,
    ) -> Result<Response<pb::FeedbackResponse>, Status> {
        self.unary(
            "Feedback",
            Role::Reader,
            request,
            |s, caller, m| async move {
                let (id, success, label) = feedback_params(m)?;
                let record = s
                    .local
                    .as_actor(&caller.name)
                    .take_feedback(&id, success, label)?;
                Ok(quire_proto::canary::feedback_response(record.into()))
            },
        )
        .await
    }
}

/// A Feedback request, checked.
fn feedback_params(
    m: pb::FeedbackRequest,
) -> Result<(String, bool, Option<quire_release::outcome::FeedbackLabel>)> {
    let id = m.request_id;
    let well_formed =
        id.len() == 35 && id.starts_with("rq-") && id[3..].bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Err(ServiceError::InvalidArgument(format!(
            "field `request_id`: {} is not a request id (rq- and 32 hex characters)",
            crate::error::quoted(&id)
        )));
    }
    let label = (!m.label.is_empty())
        .then(|| quire_release::outcome::FeedbackLabel::new(&m.label))
        .transpose()
        .map_err(|e| ServiceError::InvalidArgument(format!("field `label`: {e}")))?;
    Ok((id, m.success, label))
}

#[tonic::async_trait]
impl pb::snapshot_service_server::SnapshotService for Grpc {
    async fn import_snapshot(
        &self,
        request: Request<Streaming<pb::ImportSnapshotRequest>>,
    ) -> Result<Response<pb::Snapshot>, Status> {
        let started = Instant::now();
        let result = async {
            let _permit = self.0.permits.clone().try_acquire_owned().map_err(|_| {
                ServiceError::ResourceExhausted("too many requests in flight".into())
            })?;
            let caller = self
                .0
                .authorize(request.metadata(), "ImportSnapshot", Role::Builder)
                .await?;
            let local = self.0.local.as_actor(&caller.name);
            let mut stream = request.into_inner();
            let header = match stream.message().await? {
                Some(pb::ImportSnapshotRequest {
                    item: Some(pb::import_snapshot_request::Item::Header(h)),
                }) => h,
                _ => {
                    return Err(ServiceError::InvalidArgument(
                        "the first message must be an `ImportHeader`".into(),
                    ));
                }
            };
            let format = convert::corpus_format(header.format).map_err(invalid_request)?;
            if !header.server_path.is_empty() {
                let path = self.0.import_roots.resolve(&header.server_path)?;
                return local.import(&path, format).await;
            }
            let name = if header.file_name.is_empty() {
                "upload".to_owned()
            } else {
                header.file_name
            };
            let mut upload = local.begin_upload(format, name);
            let mut received = 0u64;
            while let Some(message) = stream.message().await? {
                match message.item {
                    Some(pb::import_snapshot_request::Item::Chunk(chunk)) => {
                        received += chunk.len() as u64;
                        if received > self.0.limits.max_upload_bytes {
                            return Err(ServiceError::ResourceExhausted(format!(
                                "upload exceeds the limit of {} bytes",
                                self.0.limits.max_upload_bytes
                            )));
                        }
                        upload.send(chunk).await?;
                    }
                    _ => {
                        return Err(ServiceError::InvalidArgument(
                            "only the first message may be a header".into(),
                        ));
                    }
                }
            }
            upload.finish().await
        }
        .await;
        self.0.metrics.record_request(
            "ImportSnapshot",
            Self::status_code(&result),
            started.elapsed(),
        );
        result
            .map(|s| Response::new(s.into()))
            .map_err(Status::from)
    }

    async fn get_snapshot(
        &self,
        request: Request<pb::GetSnapshotRequest>,
    ) -> Result<Response<pb::Snapshot>, Status> {
        self.unary("GetSnapshot", Role::Reader, request, |s, _, m| async move {
            Ok(s.local.snapshot(&m.snapshot_id).await?.into())
        })
        .await
    }

    async fn list_snapshots(
        &self,
        request: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        self.unary(
            "ListSnapshots",
            Role::Reader,
            request,
            |s, _, _| async move {
                Ok(pb::ListSnapshotsResponse {
                    snapshots: s
                        .local
                        .snapshots()
                        .await?
                        .into_iter()
                        .map(Into::into)
                        .collect(),
                })
            },
        )
        .await
    }
}

type EventStream = ReceiverStream<Result<pb::BuildIndexEvent, Status>>;

#[tonic::async_trait]
impl pb::index_service_server::IndexService for Grpc {
    type BuildIndexStream = EventStream;

    async fn build_index(
        &self,
        request: Request<pb::BuildIndexRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let server = self.0.clone();
        let started = Instant::now();
        let deadline = client_deadline(request.metadata(), started);
        let metadata = request.metadata().clone();
        let setup = async {
            let caller = server
                .authorize(request.metadata(), "BuildIndex", Role::Builder)
                .await?;
            let m = request.into_inner();
            let spec_toml = Some(m.spec_toml).filter(|s| !s.trim().is_empty());
            crate::api::parse_spec(spec_toml.as_deref(), "spec_toml")?;
            let position = server.waiting_builds.fetch_add(1, Ordering::SeqCst);
            if position >= server.limits.build_queue {
                server.waiting_builds.fetch_sub(1, Ordering::SeqCst);
                return Err(ServiceError::ResourceExhausted(format!(
                    "the build queue is full ({} waiting)",
                    server.limits.build_queue
                )));
            }
            Ok((m.snapshot_id, spec_toml, position, caller))
        }
        .await;
        let (snapshot, spec_toml, position, caller) = match setup {
            Ok(v) => v,
            Err(e) => {
                self.0
                    .metrics
                    .record_request("BuildIndex", e.code(), started.elapsed());
                return Err(e.into());
            }
        };
        let (tx, rx) = mpsc::channel(64);
        let span = tracing::info_span!("build", snapshot = %snapshot);
        crate::telemetry::continue_trace(&span, &metadata);
        tokio::spawn(
            async move {
                let _ = tx.send(StreamProgress::event(pb::build_index_event::Event::Queued(position as u32))).await;
                let permit = server.running_build.clone().acquire_owned().await;
                server.waiting_builds.fetch_sub(1, Ordering::SeqCst);
                let progress: SharedProgress = Arc::new(StreamProgress { tx: tx.clone(), done: AtomicU64::new(0), deadline });
                let built = server.local.as_actor(&caller.name).build(&snapshot, spec_toml.as_deref(), progress).await;
                drop(permit);
                let code = Grpc::status_code(&built);
                server.metrics.record_request("BuildIndex", code, started.elapsed());
                let last = match built {
                    Ok(outcome) => {
                        server.metrics.record_build(started.elapsed());
                        tracing::info!(index = %outcome.manifest.index_id, reused = outcome.reused, "built");
                        StreamProgress::event(pb::build_index_event::Event::Result(pb::BuildResult {
                            manifest: Some(convert::manifest_to_pb(&outcome.manifest, None)),
                            reused: outcome.reused,
                            unreadable_documents: outcome.unreadable_documents,
                        }))
                    }
                    Err(e) => Err(Status::from(e)),
                };
                let _ = tx.send(last).await;
            }
            .instrument(span),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_index(
        &self,
        request: Request<pb::GetIndexRequest>,
    ) -> Result<Response<pb::IndexManifest>, Status> {
        self.unary("GetIndex", Role::Reader, request, |s, _, m| async move {
            let info = s.local.index(&m.target).await?;
            Ok(convert::manifest_to_pb(&info.manifest, info.stale))
        })
        .await
    }

    async fn list_indexes(
        &self,
        request: Request<pb::ListIndexesRequest>,
    ) -> Result<Response<pb::ListIndexesResponse>, Status> {
        self.unary("ListIndexes", Role::Reader, request, |s, _, _| async move {
            Ok(pb::ListIndexesResponse {
                indexes: s
                    .local
                    .indexes()
                    .await?
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            })
        })
        .await
    }

    async fn verify_index(
        &self,
        request: Request<pb::VerifyIndexRequest>,
    ) -> Result<Response<pb::VerifyIndexResponse>, Status> {
        self.unary(
            "VerifyIndex",
            Role::Builder,
            request,
            |s, _, m| async move { Ok(s.local.verify(&m.target).await?.into()) },
        )
        .await
    }

    async fn rebuild_check(
        &self,
        request: Request<pb::RebuildCheckRequest>,
    ) -> Result<Response<pb::RebuildCheckResponse>, Status> {
        self.unary(
            "RebuildCheck",
            Role::Builder,
            request,
            |s, _, m| async move {
                // A rebuild is a build: it waits for the one build slot and holds it until
                // the rebuild ends; it stops when the request's time is up or its client has
                // gone (`Local::rebuild_check` adds that) rather than running on.
                let deadline = Instant::now() + Duration::from_millis(s.limits.request_timeout_ms);
                let slot = s.running_build.clone().acquire_owned().await.ok();
                let progress: SharedProgress = Arc::new(DeadlineProgress {
                    deadline,
                    _slot: slot,
                });
                Ok(s.local.rebuild_check(&m.target, progress).await?.into())
            },
        )
        .await
    }
}
