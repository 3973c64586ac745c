//! A quire server on ephemeral loopback ports (gRPC and the HTTP/JSON API), with one token per role (the token of a role
//! is `t-<role>`), for the end-to-end tests. [`TestServer::stop`] shuts it down.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use quire_core::Reader;
use quire_index::{Mode, Query};
use quire_server::serve::{self, ServeOptions};
use quire_server::{
    Binding, Caller, ImportRoots, Limits, Remote, Role, RunAs, ServerConfig, ServiceError, Tls,
};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tonic::Code;

pub const TOKENS: [(&str, Role); 4] = [
    ("t-reader", Role::Reader),
    ("t-builder", Role::Builder),
    ("t-releaser", Role::Releaser),
    ("t-admin", Role::Admin),
];

pub use crate::paths::handbook;

/// The [`TOKENS`] as a server configuration lists them: by hash, named after their role, each
/// an application token that may assert any principal (`run_as` every user and group), as the
/// tests of everything but principals want.
pub fn role_tokens() -> BTreeMap<String, Caller> {
    TOKENS
        .iter()
        .map(|(t, role)| {
            let anyone = RunAs::new(vec!["*".into()], vec!["*".into()]).unwrap();
            (
                token_hash(t),
                Caller::new(format!("{role:?}"), *role, Binding::RunAs(anyone)),
            )
        })
        .collect()
}

/// A token's blake3 hash, as server.toml lists it.
pub fn token_hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// Where the HTTP/JSON API listens.
    pub http_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<quire_server::Result<()>>,
    _dir: TempDir,
}

impl TestServer {
    pub async fn start(limits: Limits) -> Self {
        Self::start_with(limits, None).await
    }

    pub async fn start_with(limits: Limits, tls: Option<Tls>) -> Self {
        Self::start_config(ServerConfig {
            tokens: role_tokens(),
            limits,
            tls,
            ..ServerConfig::default()
        })
        .await
    }

    /// A server with a token per role that reads server paths under `roots` (`[import]
    /// roots`).
    pub async fn start_with_roots(roots: &[&std::path::Path]) -> Self {
        let roots: Vec<std::path::PathBuf> = roots.iter().map(|r| r.to_path_buf()).collect();
        Self::start_config(ServerConfig {
            tokens: role_tokens(),
            import_roots: ImportRoots::new(&roots, "test config").unwrap(),
            ..ServerConfig::default()
        })
        .await
    }

    /// A server with `config` (no tokens: open, as on loopback) and the demo index.
    pub async fn start_config(config: ServerConfig) -> Self {
        let dir = TempDir::new().unwrap();
        let options = ServeOptions {
            data: dir.path().join("data"),
            config: config.clone(),
            demo_corpus: Some(handbook()),
            demo_spec: None,
            models: Default::default(),
            artifacts: None,
        };
        let (local, metrics) = tokio::task::spawn_blocking(move || serve::prepare(&options))
            .await
            .unwrap()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        let listeners = serve::Listeners {
            grpc: listener,
            metrics: None,
            http: Some(http),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve::run_with(local, config, metrics, listeners, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            http_addr,
            shutdown: Some(tx),
            task,
            _dir: dir,
        }
    }

    /// The server's data dir.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HTTP/JSON API's base URL.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    pub async fn client(&self, token: Option<&str>) -> Remote {
        Remote::connect(&self.url(), token.map(str::to_owned), None)
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stop the server and hand over its temporary directory (the data dir is `data` in it),
    /// to read what the server left behind.
    pub async fn stop_keeping_data(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap().unwrap();
        self._dir
    }
}

pub fn code(e: &ServiceError) -> Code {
    e.code()
}

pub fn query(text: &str, groups: &[&str], mode: Mode, k: usize) -> Query {
    Query {
        text: text.into(),
        reader: Reader::new(None, groups).unwrap(),
        k,
        mode,
        fusion: None,
        candidates: None,
    }
}

/// The demo index and a second index of the handbook built with `spec`, by an admin client:
/// `(admin, demo index id, new index id)`.
pub async fn two_indexes(server: &TestServer, spec: &str) -> (Remote, String, String) {
    use quire_server::QuireApi;
    let admin = server.client(Some("t-admin")).await;
    let old = admin
        .index("handbook")
        .await
        .unwrap()
        .manifest
        .index_id
        .to_string();
    let snap = admin.import(&handbook(), None).await.unwrap();
    let new = admin
        .build(
            snap.snapshot_id.as_str(),
            Some(spec),
            std::sync::Arc::new(quire_index::NoProgress),
        )
        .await
        .unwrap()
        .manifest
        .index_id
        .to_string();
    assert_ne!(old, new);
    (admin, old, new)
}
