//! Running the gRPC server: demo index, health, reflection, metrics, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quire_core::BuildSpec;
use quire_embed::Models;
use quire_proto::pb;
use quire_registry_pg::{PgOptions, PgRegistry};
use quire_store::{Access, AliasChange, ArtifactStore, DirStore, Store, StoreError};
use quire_store_s3::{Credentials, S3Store};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, ServerTlsConfig};

use crate::api::Local;
use crate::canary_eval::{CANARY_ACTOR, evaluate_canaries};
use crate::config::{RegistryConfig, ServerConfig, StorageConfig};
use crate::error::{Result, ServiceError};
use crate::grpc::Grpc;
use crate::metrics::{Metrics, serve_metrics};
use crate::observe::{Observations, Retention, write_observations};
use crate::outcomes::Outcomes;
use crate::sampler::Sampler;
use tokio::sync::watch;

/// The alias the demo index is served under.
pub const DEMO_NAME: &str = "handbook";
/// The actor recorded for what the server does on its own (the demo's import and alias).
pub const DEMO_ACTOR: &str = "quire-serve";

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The data dir.
    pub data: PathBuf,
    /// Tokens, limits, TLS.
    pub config: ServerConfig,
    /// Import and build this corpus on start and serve it as `handbook`.
    pub demo_corpus: Option<PathBuf>,
    /// The demo's build spec; the default spec (hash-v1) when `None`.
    pub demo_spec: Option<BuildSpec>,
    /// Embedding models besides those `config` registers (which win on a name clash).
    pub models: Models,
    /// The shared artifact store, already open (instead of opening `config.storage` with
    /// credentials from the environment).
    pub artifacts: Option<Arc<dyn ArtifactStore>>,
}

/// Refuse to run anywhere but on a loopback address without authentication, or with tokens
/// but in plaintext (bearer tokens would cross the network in the clear) unless
/// `allow_plaintext` says something in front terminates TLS.
pub fn check_exposure(addr: SocketAddr, config: &ServerConfig) -> Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if config.tokens.is_empty() {
        return Err(ServiceError::FailedPrecondition(format!(
            "refusing to serve {addr} without authentication: list API tokens in server.toml, or bind a loopback address"
        )));
    }
    if config.tls.is_none() && !config.allow_plaintext {
        return Err(ServiceError::FailedPrecondition(format!(
            "refusing to serve {addr} in plaintext: bearer tokens would cross the network in the clear; configure [tls], bind a loopback address, or set allow_plaintext = true in server.toml when a proxy terminates TLS"
        )));
    }
    Ok(())
}

/// Refuse to serve the HTTP API (always plaintext) anywhere but on a loopback address unless
/// tokens are configured and `allow_plaintext` says a proxy in front terminates TLS.
pub fn check_http_exposure(addr: SocketAddr, config: &ServerConfig) -> Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if config.tokens.is_empty() || !config.allow_plaintext {
        return Err(ServiceError::FailedPrecondition(format!(
            "refusing to serve HTTP on {addr}: it is plaintext; bind a loopback address, or list API tokens and set allow_plaintext = true in server.toml when a proxy terminates TLS"
        )));
    }
    Ok(())
}

/// Refuse to serve the metrics endpoint (which has no authentication) anywhere but on a
/// loopback address unless `allow_remote_metrics` says so.
pub fn check_metrics_exposure(addr: SocketAddr, config: &ServerConfig) -> Result<()> {
    if !addr.ip().is_loopback() && !config.allow_remote_metrics {
        return Err(ServiceError::FailedPrecondition(format!(
            "refusing to serve metrics on {addr}: the endpoint has no authentication; bind a loopback address, or set allow_remote_metrics = true in server.toml"
        )));
    }
    Ok(())
}

/// Open the data dir at `data` with its registry (`registry`'s database, else the data dir's
/// redb file; a reader's database registry refuses changes) and its shared artifact store,
/// if `storage` names one.
pub fn open_store(
    data: &Path,
    access: Access,
    registry: Option<&RegistryConfig>,
    storage: Option<&StorageConfig>,
) -> Result<Store> {
    if storage.is_some() && access == Access::Read && !data.join(quire_store::LOCK_FILE).exists() {
        // A machine that reads from a shared store starts with no data dir: it is the
        // fetched indices' cache, so make it (as a writer would) rather than refuse.
        drop(open_with_registry(data, Access::Write, registry, true)?);
    }
    let store = open_with_registry(data, access, registry, access == Access::Read)?;
    Ok(match storage {
        Some(storage) => store.with_artifacts(open_artifacts(storage)?),
        None => store,
    })
}

/// The shared artifact store `config` names; an S3 store's credentials come from the
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
pub fn open_artifacts(config: &StorageConfig) -> Result<Arc<dyn ArtifactStore>> {
    tracing::info!(store = %config.location(), "artifacts shared through");
    let invalid = |e: String| ServiceError::InvalidArgument(e);
    Ok(match config {
        StorageConfig::Dir(path) => Arc::new(DirStore::open(path)?),
        StorageConfig::S3(s3) => {
            let credentials = Credentials::from_env().map_err(|e| invalid(e.to_string()))?;
            Arc::new(S3Store::connect(s3, &credentials).map_err(|e| invalid(e.to_string()))?)
        }
    })
}

/// Open the data dir with `registry` (refusing changes when `read_only`), or its redb file.
fn open_with_registry(
    data: &Path,
    access: Access,
    registry: Option<&RegistryConfig>,
    read_only: bool,
) -> Result<Store> {
    let Some(config) = registry else {
        return Ok(Store::open(data, access)?);
    };
    tracing::info!(registry = %config.url, "registry in PostgreSQL");
    let options = PgOptions {
        migrate: config.migrate,
        read_only,
        ..PgOptions::default()
    };
    let pg = PgRegistry::connect(&config.url, options).map_err(StoreError::from)?;
    Ok(Store::open_with_registry(data, access, Box::new(pg))?)
}

/// The data dir a server serves: its own (a replica's is the cache of what it fetched, and
/// its registry refuses changes), with the shared store if there is one.
fn open_served_store(options: &ServeOptions) -> Result<Store> {
    let config = &options.config;
    crate::replica::check_replica(config)?;
    let replica = config.replica.enabled;
    if replica && options.demo_corpus.is_some() {
        return Err(ServiceError::InvalidArgument(
            "replica: a replica builds nothing; serve the demo from a writer".into(),
        ));
    }
    let registry = config.registry.as_ref();
    let store = open_with_registry(&options.data, Access::Write, registry, replica)?;
    Ok(match (&options.artifacts, &config.storage) {
        (Some(artifacts), _) => store.with_artifacts(artifacts.clone()),
        (None, Some(storage)) => store.with_artifacts(open_artifacts(storage)?),
        (None, None) => store,
    })
}

/// Open the data dir, prepare the demo if asked, and build the service state.
pub fn prepare(options: &ServeOptions) -> Result<(Local, Arc<Metrics>)> {
    let mut models = options.models.clone();
    for m in &options.config.models {
        models = models
            .with_local(&m.name, &m.path)
            .map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
    }
    let metrics = Arc::new(Metrics::new());
    let fetches = metrics.clone();
    let store = Arc::new(
        open_served_store(options)?
            .with_options(options.config.store_options())
            .with_models(models)
            .with_fetch_observer(Arc::new(move |_, outcome| {
                fetches.follow().record_fetch(outcome);
            })),
    );
    if let Some(corpus) = &options.demo_corpus {
        let spec = options.demo_spec.clone().unwrap_or_default();
        prepare_demo(&store, corpus, &spec)?;
    }
    let config = &options.config;
    let queue = Arc::new(Observations::new(Sampler::queue_capacity(&config.sampling)));
    let mut local = Local::new(store, DEMO_ACTOR)
        .with_query_threads(config.limits.query_threads())
        .with_metrics(metrics.clone())
        .with_observations(queue.clone());
    if config.sampling.enabled() {
        let sampler = Sampler::new(
            config.sampling.clone(),
            queue.clone(),
            Some(metrics.clone()),
        );
        local = local.with_sampler(Arc::new(sampler));
    }
    if config.feedback.remember > 0 {
        let outcomes = Outcomes::new(config.feedback.clone(), queue, Some(metrics.clone()));
        local = local.with_outcomes(Arc::new(outcomes));
    }
    Ok((local, metrics))
}

/// Import and build the demo corpus with `spec` and serve it as [`DEMO_NAME`]. The alias is
/// created once and follows the demo's own builds (another model, say); a repoint by anyone
/// else is left alone.
fn prepare_demo(store: &Store, corpus: &Path, spec: &BuildSpec) -> Result<()> {
    let snapshot = store.import_as(corpus, None, DEMO_ACTOR)?;
    let built = store.build_as(
        &snapshot.snapshot_id,
        spec,
        &quire_index::NoProgress,
        DEMO_ACTOR,
    )?;
    let id = &built.manifest.index_id;
    let repoint = match store.alias(DEMO_NAME) {
        Err(_) => Some("demo index"),
        Ok(r) if r.actor == DEMO_ACTOR && &r.state.primary != id => {
            Some("demo index, rebuilt with another spec")
        }
        Ok(_) => None,
    };
    if let Some(reason) = repoint {
        store.change_alias(DEMO_NAME, &AliasChange::Set(id.clone()), DEMO_ACTOR, reason)?;
    }
    tracing::info!(index = %id, reused = built.reused, model = %spec.embedding.model, "demo index ready as `{DEMO_NAME}`");
    Ok(())
}

/// The embedding model of the index the demo alias serves.
pub fn demo_model(store: &Store) -> Result<String> {
    let primary = store.alias(DEMO_NAME)?.state.primary;
    Ok(store.index_info(&primary)?.manifest.embedding.model_id)
}

/// Serve gRPC on `listener` until `shutdown` resolves, then let in-flight requests finish.
pub async fn run(
    local: Local,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let listeners = Listeners {
        grpc: listener,
        metrics: metrics_listener,
        http: None,
    };
    run_with(local, config, metrics, listeners, shutdown).await
}

/// Where a server listens: gRPC, and optionally Prometheus metrics and the HTTP/JSON API.
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC services.
    pub grpc: TcpListener,
    /// `/metrics`.
    pub metrics: Option<TcpListener>,
    /// The HTTP/JSON API (see [`crate::http`]).
    pub http: Option<TcpListener>,
}

/// Serve on `listeners` until `shutdown` resolves, then let in-flight requests finish.
pub async fn run_with(
    local: Local,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let Listeners {
        grpc: listener,
        metrics: metrics_listener,
        http: http_listener,
    } = listeners;
    let addr = listener
        .local_addr()
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    check_exposure(addr, &config)?;
    if let Some(l) = &http_listener {
        let http_addr = l
            .local_addr()
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        check_http_exposure(http_addr, &config)?;
    }
    if config.tokens.is_empty() {
        tracing::warn!(%addr, "no API tokens configured: every caller is an admin (loopback only)");
    }
    let background = Background::start(&local, &config);
    let grpc = Grpc::new(local, &config, metrics.clone())?;
    let ceiling = grpc.decoding_ceiling();
    let (health_reporter, health) = tonic_health::server::health_reporter();
    // A server on a shared registry follows it; until every arm it serves is local it is not
    // ready for traffic.
    let following = config.registry.is_some();
    let ready = !following || grpc.store().arms_local();
    crate::replica::set_health(&health_reporter, ready).await;
    let follower = following.then(|| {
        tokio::spawn(crate::replica::follow(
            grpc.store().clone(),
            metrics.clone(),
            config.replica.poll_interval,
            health_reporter.clone(),
            background.stop.subscribe(),
        ))
    });
    // Both reflection versions: grpcurl and other tools still differ in which they ask for.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(quire_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder()
        .build_v1()
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let reflection_alpha = reflection_builder()
        .build_v1alpha()
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let metrics_task = metrics_listener.map(|l| tokio::spawn(serve_metrics(l, metrics)));
    // Both transports stop together: the HTTP server waits for this signal, sent once
    // `shutdown` resolves.
    let (stopping, mut stop_http) = watch::channel(false);
    let http_task = match http_listener {
        Some(l) => {
            if let Ok(http_addr) = l.local_addr() {
                tracing::info!(%http_addr, "serving HTTP");
            }
            let router = crate::http::router(&grpc, following);
            let signal = async move {
                let _ = stop_http.wait_for(|stop| *stop).await;
            };
            Some(tokio::spawn(crate::http::serve(l, router, signal)))
        }
        None => None,
    };
    let shutdown = async {
        shutdown.await;
        let _ = stopping.send(true);
    };
    // Close idle indices now and then, not only when another index opens, and record the
    // refusal counts of denial windows that have passed.
    let store = grpc.store().clone();
    let services = grpc.clone();
    let sweeper = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            every.tick().await;
            let store = store.clone();
            let _ = tokio::task::spawn_blocking(move || store.sweep_cache()).await;
            services
                .close_denial_windows(Some(std::time::Instant::now()))
                .await;
        }
    });
    let last_denials = grpc.clone();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        let read = |p: &PathBuf| {
            std::fs::read(p)
                .map_err(|e| ServiceError::FailedPrecondition(format!("{}: {e}", p.display())))
        };
        let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(|e| ServiceError::FailedPrecondition(format!("tls: {e}")))?;
    }
    tracing::info!(%addr, "serving");
    let result = builder
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(
            pb::retrieval_service_server::RetrievalServiceServer::new(grpc.clone())
                .max_decoding_message_size(ceiling),
        )
        .add_service(
            pb::index_service_server::IndexServiceServer::new(grpc.clone())
                .max_decoding_message_size(ceiling),
        )
        .add_service(
            pb::snapshot_service_server::SnapshotServiceServer::new(grpc.clone())
                .max_decoding_message_size(ceiling),
        )
        .add_service(
            pb::release_service_server::ReleaseServiceServer::new(grpc.clone())
                .max_decoding_message_size(ceiling),
        )
        .add_service(
            pb::audit_service_server::AuditServiceServer::new(grpc.clone())
                .max_decoding_message_size(ceiling),
        )
        .add_service(
            pb::eval_service_server::EvalServiceServer::new(grpc.clone())
                .max_decoding_message_size(ceiling),
        )
        .add_service(
            pb::canary_service_server::CanaryServiceServer::new(grpc)
                .max_decoding_message_size(ceiling),
        )
        // Nagle's algorithm on accepted sockets, meeting delayed ACKs, costs ~40 ms per small
        // response (measured by benches/load.rs): turn it off.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()));
    if let Some(task) = metrics_task {
        task.abort();
    }
    let _ = stopping.send(true);
    if let Some(task) = http_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the HTTP server failed"),
            Err(e) => tracing::error!(error = %e, "the HTTP server task failed"),
        }
    }
    sweeper.abort();
    background.stop().await;
    if let Some(follower) = follower {
        let _ = follower.await;
    }
    last_denials.close_denial_windows(None).await;
    tracing::info!("stopped");
    result
}

/// The server's own background work besides serving: the sample writer and the canary
/// evaluations. Stopped after the last request has been answered, so what was sampled is
/// written.
struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    fn start(local: &Local, config: &ServerConfig) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        // A replica writes nothing to the registry: no samples or feedback to write or prune.
        let observed = (!config.replica.enabled)
            .then(|| local.observations().and_then(|q| q.take_receiver()))
            .flatten();
        if let Some(queue) = observed {
            let retention = Retention {
                samples: config.sampling.retention(),
                feedback: config.feedback.retention,
            };
            let store = local.store().clone();
            tasks.push(tokio::spawn(write_observations(
                store, queue, retention, stopped,
            )));
        }
        if config.canary_eval.every.is_some() {
            let schedule = config.canary_eval.clone();
            let local = local.as_actor(CANARY_ACTOR);
            tasks.push(tokio::spawn(evaluate_canaries(
                local,
                schedule,
                stop.subscribe(),
            )));
        }
        Self { stop, tasks }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            if task.await.is_err() {
                tracing::error!("a background task failed");
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
