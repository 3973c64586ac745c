//! Several machines on one machine (issue 15): a builder and replicas sharing the test
//! PostgreSQL registry (a fresh database per [`Cluster`]) and the test SeaweedFS (a fresh key
//! prefix per cluster), each with a data dir of its own; [`Replica`] is a replica server on a
//! loopback port. Without the services [`Cluster::new`] is `None` (skip), except under
//! `CI=true`, where it panics.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::paths::S3;
use quire_core::{BuildSpec, IndexId};
use quire_registry_pg::{PgOptions, PgRegistry, PgUrl};
use quire_server::serve::{self, ServeOptions};
use quire_server::{RegistryConfig, ReplicaConfig, ServerConfig, StorageConfig};
use quire_store::{Access, AliasChange, ArtifactStore, Store, StoreOptions};
use quire_store_s3::{Credentials, S3Config, S3Store, Timeouts};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A second build spec of the handbook (another index id).
const SENTENCES: &str =
    "version = 1\ndefault_acl = [\"*\"]\n[chunking]\nstrategy = \"sentences\"\nmax_tokens = 64\n";

/// Short bounds on the store: 1 s to connect, 2 s a request, one retry.
pub const SHORT: Timeouts = Timeouts {
    connect: Duration::from_secs(1),
    request: Duration::from_secs(2),
    retries: 1,
    retry_window: Duration::from_secs(5),
};

/// Replicas poll this often (notifications usually come first).
pub const POLL: Duration = Duration::from_millis(200);

/// A shared registry and store, and a directory for the machines' data dirs.
pub struct Cluster {
    pub registry: PgUrl,
    /// The registry's URL as text (the test server has no password).
    pub registry_url: String,
    pub s3: S3,
    pub store: S3Config,
    pub dir: TempDir,
}

impl Cluster {
    /// A fresh registry (migrated) and store prefix; `None` (skip) without the services.
    pub fn new() -> Option<Self> {
        let s3 = crate::s3()?;
        Self::on(s3, crate::pg::fresh_database()?)
    }

    /// A cluster whose registry is the database at `registry_url` (migrated here), on a fresh
    /// prefix of `s3`.
    pub fn on(s3: S3, registry_url: String) -> Option<Self> {
        let registry: PgUrl = registry_url.parse().unwrap();
        PgRegistry::migrate_at(&registry).unwrap();
        let mut store = S3Config::new(&s3.url, Some(&s3.endpoint), None).unwrap();
        let prefix = crate::paths::unique("replicas");
        store.url = store.url.with_subprefix(&prefix).unwrap();
        store.timeouts = SHORT;
        Some(Self {
            registry,
            registry_url,
            s3,
            store,
            dir: TempDir::new().unwrap(),
        })
    }

    /// A client of the shared store, at `endpoint` (a proxy) or the store's own.
    pub fn artifacts(&self, endpoint: Option<String>) -> Arc<dyn ArtifactStore> {
        let config = S3Config {
            endpoint: endpoint.or_else(|| self.store.endpoint.clone()),
            ..self.store.clone()
        };
        let credentials =
            Credentials::new(&self.s3.access_key_id, &self.s3.secret_access_key, None);
        Arc::new(S3Store::connect(&config, &credentials).unwrap())
    }

    /// A proxy in front of the shared store (reach the store through it with
    /// `artifacts(Some(proxy.endpoint()))`).
    pub fn proxy(&self) -> crate::proxy::Proxy {
        let upstream = self.s3.endpoint.trim_start_matches("http://");
        crate::proxy::Proxy::start(upstream.parse().expect("the store's endpoint"))
    }

    /// The machine `name`'s data dir on the shared registry (read-only for a replica) and
    /// `artifacts`.
    pub fn machine(
        &self,
        name: &str,
        read_only: bool,
        artifacts: Arc<dyn ArtifactStore>,
        options: StoreOptions,
    ) -> Store {
        let pg = PgRegistry::connect(
            &self.registry,
            PgOptions {
                read_only,
                ..PgOptions::default()
            },
        )
        .unwrap();
        Store::open_with_registry(self.dir.path().join(name), Access::Write, Box::new(pg))
            .unwrap()
            .with_options(options)
            .with_artifacts(artifacts)
    }

    /// A builder: a writable registry and the store's own endpoint.
    pub fn builder(&self, name: &str) -> Store {
        self.machine(name, false, self.artifacts(None), StoreOptions::default())
    }

    /// A replica's data dir as [`Store::follow_aliases`] drives it, without a server.
    pub fn replica_store(&self, name: &str, artifacts: Arc<dyn ArtifactStore>) -> Store {
        self.machine(name, true, artifacts, StoreOptions::default())
    }

    /// The configuration of a replica server.
    pub fn replica_config(&self) -> ServerConfig {
        ServerConfig {
            registry: Some(RegistryConfig {
                url: self.registry.clone(),
                migrate: false,
            }),
            storage: Some(StorageConfig::S3(self.store.clone())),
            replica: ReplicaConfig {
                enabled: true,
                poll_interval: POLL,
            },
            ..ServerConfig::default()
        }
    }
}

/// Two indices of the handbook published by `builder`: (default spec, sentences spec).
pub fn two_indexes(builder: &Store) -> (IndexId, IndexId) {
    let snapshot = builder
        .import_as(&crate::handbook(), None, "builder")
        .unwrap()
        .snapshot_id;
    let build = |spec: &BuildSpec| {
        builder
            .build_as(&snapshot, spec, &quire_index::NoProgress, "builder")
            .unwrap()
            .manifest
            .index_id
    };
    let sentences = BuildSpec::from_toml(SENTENCES, "sentences").unwrap();
    (build(&BuildSpec::default()), build(&sentences))
}

/// Point `alias` at `index` from `builder`; the new revision.
pub fn set(builder: &Store, alias: &str, index: &IndexId) -> u64 {
    builder
        .change_alias(alias, &AliasChange::Set(index.clone()), "releaser", "test")
        .unwrap()
        .revision
}

/// A replica server on an ephemeral loopback port, stopped by [`Replica::stop`].
pub struct Replica {
    pub addr: SocketAddr,
    /// Where it serves `GET /metrics`.
    pub metrics_addr: SocketAddr,
    pub store: Arc<Store>,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<quire_server::Result<()>>,
}

impl Replica {
    /// Start replica `name` of `cluster`, reading the store through `artifacts`.
    pub async fn start(cluster: &Cluster, name: &str, artifacts: Arc<dyn ArtifactStore>) -> Self {
        Self::start_with(cluster, name, artifacts, cluster.replica_config()).await
    }

    /// [`Replica::start`] with `config`.
    pub async fn start_with(
        cluster: &Cluster,
        name: &str,
        artifacts: Arc<dyn ArtifactStore>,
        config: ServerConfig,
    ) -> Self {
        let options = ServeOptions {
            data: cluster.dir.path().join(name),
            config: config.clone(),
            demo_corpus: None,
            demo_spec: None,
            models: Default::default(),
            artifacts: Some(artifacts),
        };
        let (local, metrics) = tokio::task::spawn_blocking(move || serve::prepare(&options))
            .await
            .unwrap()
            .unwrap();
        let store = local.store().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics_addr = metrics_listener.local_addr().unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let serving = serve::run(
            local,
            config,
            metrics,
            listener,
            Some(metrics_listener),
            async {
                let _ = stopped.await;
            },
        );
        let task = tokio::spawn(serving);
        Self {
            addr,
            metrics_addr,
            store,
            shutdown,
            task,
        }
    }

    /// The value of the sample `name` (with its labels, e.g. `quire_index_fetches_total{result="ok"}`)
    /// on the replica's metrics endpoint; `None` when it has no such sample.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics_addr)
            .await
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: replica\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        text.lines().find_map(|line| {
            let (sample, value) = line.rsplit_once(' ')?;
            (sample == name).then(|| value.parse().unwrap())
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> quire_server::Remote {
        quire_server::Remote::connect(&self.url(), None, None)
            .await
            .unwrap()
    }

    /// The gRPC health of the retrieval service.
    pub async fn serving(&self) -> bool {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        let channel = tonic::transport::Endpoint::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel);
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "quire.v1.RetrievalService".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        status == ServingStatus::Serving as i32
    }

    /// Wait until the health service says serving (a minute at most, then fail).
    pub async fn wait_serving(&self) {
        for _ in 0..1200 {
            if self.serving().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("replica {} never became ready", self.addr);
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task.await.unwrap().unwrap();
    }
}
