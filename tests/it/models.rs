//! A real embedding model over gRPC: a server with all-MiniLM-L6-v2 registered in its config
//! builds with `specs/minilm.toml`, streams the embedding cache's hits and misses (a new HNSW
//! setting or a snapshot with one changed document embeds only what it has not seen), and answers
//! vector queries with the model the index was built with, at fp32 and at int8. Skips with a message when
//! `models/all-minilm-l6-v2` is absent (`scripts/fetch-model` fetches it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use quire_testkit::server as support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use quire_index::{Mode, Progress};
use quire_server::{ModelEntry, QuireApi, ServerConfig};
use support::{TestServer, query};
use tempfile::TempDir;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn minilm() -> Option<PathBuf> {
    quire_testkit::minilm()
}

/// The cache reports a build streamed, if any.
#[derive(Default)]
struct CacheEvents(Mutex<Vec<(u64, u64)>>);

impl Progress for CacheEvents {
    fn stage(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn embed_cache(&self, hits: u64, misses: u64) {
        self.0.lock().unwrap().push((hits, misses));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minilm_builds_stream_cache_stats_and_queries_use_the_model() {
    let Some(model) = minilm() else { return };
    let server = TestServer::start_config(ServerConfig {
        models: vec![ModelEntry {
            name: "all-minilm-l6-v2".into(),
            path: model,
        }],
        ..ServerConfig::default()
    })
    .await;
    let client = server.client(None).await;
    let corpus = TempDir::new().unwrap();
    let docs = [
        (
            "leave",
            "Parental Leave",
            "Every new parent gets twenty weeks of paid leave.",
        ),
        (
            "sev",
            "Incident Severity",
            "SEV1 means the whole product is down for everyone.",
        ),
        (
            "expenses",
            "Expenses",
            "Submit receipts for travel within thirty days.",
        ),
    ];
    let lines: String = docs
        .iter()
        .map(|(id, title, text)| {
            format!(
                "{}\n",
                serde_json::json!({"id": id, "title": title, "text": text, "acl": ["*"]})
            )
        })
        .collect();
    let path = corpus.path().join("corpus.jsonl");
    std::fs::write(&path, lines).unwrap();
    let snapshot = client.import(&path, None).await.unwrap();

    let spec = std::fs::read_to_string(workspace().join("specs/minilm.toml")).unwrap();
    let cold = Arc::new(CacheEvents::default());
    let built = client
        .build(snapshot.snapshot_id.as_str(), Some(&spec), cold.clone())
        .await
        .unwrap();
    assert_eq!(*cold.0.lock().unwrap(), [(0, 3)]);
    assert_eq!(built.manifest.build.embed_cache.misses, 3);
    // The kernel path that computed the vectors is on record (it changes speed, not bits).
    let kernel = built
        .manifest
        .build
        .embed_kernel
        .clone()
        .unwrap_or_default();
    assert!(
        ["avx512", "avx2-fma", "scalar"].contains(&kernel.as_str()),
        "{kernel}"
    );

    // Other HNSW parameters: a new index whose vectors (and BM25) are the first index's, taken
    // whole by stage reuse: nothing is embedded, not even a cache lookup; the graph is rebuilt.
    let other = spec.replace("m = 16", "m = 8");
    assert_ne!(other, spec);
    let warm = Arc::new(CacheEvents::default());
    let rebuilt = client
        .build(snapshot.snapshot_id.as_str(), Some(&other), warm.clone())
        .await
        .unwrap();
    assert_eq!(*warm.0.lock().unwrap(), []);
    assert_ne!(rebuilt.manifest.index_id, built.manifest.index_id);
    let stages = &rebuilt.manifest.build.stages;
    let first = Some(built.manifest.index_id.clone());
    assert_eq!(stages["vectors"].reused_from, first);
    assert_eq!(stages["bm25"].reused_from, first);
    assert_eq!(stages["graph"].reused_from, None);
    assert_eq!(
        stages["vectors"].key,
        built.manifest.build.stages["vectors"].key
    );

    // int8: another index, vectors cached apart from fp32's, queries embedded at int8.
    let int8_spec = spec.replace("[embedding]\n", "[embedding]\nprecision = \"int8\"\n");
    assert_ne!(int8_spec, spec);
    let int8_events = Arc::new(CacheEvents::default());
    let int8 = client
        .build(
            snapshot.snapshot_id.as_str(),
            Some(&int8_spec),
            int8_events.clone(),
        )
        .await
        .unwrap();
    assert_eq!(*int8_events.0.lock().unwrap(), [(0, 3)]);
    assert_ne!(int8.manifest.index_id, built.manifest.index_id);
    let response = client
        .retrieve(
            int8.manifest.index_id.as_str(),
            query(
                "how long may mothers and fathers stay home with a baby",
                &[],
                Mode::Vector,
                3,
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(response.hits[0].doc_id, "leave", "{:?}", response.hits);

    // A new snapshot with one document changed: only its chunk is embedded.
    let changed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("thirty days", "sixty days");
    std::fs::write(&path, changed).unwrap();
    let snapshot2 = client.import(&path, None).await.unwrap();
    assert_ne!(snapshot2.snapshot_id, snapshot.snapshot_id);
    let partial = Arc::new(CacheEvents::default());
    client
        .build(snapshot2.snapshot_id.as_str(), Some(&spec), partial.clone())
        .await
        .unwrap();
    assert_eq!(*partial.0.lock().unwrap(), [(2, 1)]);

    let id = built.manifest.index_id.as_str();
    let response = client
        .retrieve(
            id,
            query(
                "how long may mothers and fathers stay home with a baby",
                &[],
                Mode::Vector,
                3,
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(response.lineage.embedding_model, "all-minilm-l6-v2");
    assert_eq!(response.hits[0].doc_id, "leave", "{:?}", response.hits);
    server.stop().await;
}
