//! End-to-end over real gRPC on 127.0.0.1 with ephemeral ports: import, build with progress,
//! retrieve in every mode, verify; the role matrix; limits and malformed requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use quire_index::{Mode, Progress};
use quire_proto::pb;
use quire_server::serve;
use quire_server::{Limits, QuireApi, Remote, Role, ServerConfig, Tls};
use tempfile::TempDir;
use tonic::Code;

use quire_testkit::server as support;

use support::{TOKENS, TestServer, code, handbook, query};

#[derive(Default)]
struct Recorder {
    stages: Mutex<Vec<(String, u64)>>,
    advanced: Mutex<u64>,
}

impl Progress for Recorder {
    fn stage(&self, name: &'static str, total: u64) {
        self.stages.lock().unwrap().push((name.into(), total));
    }
    fn advance(&self, n: u64) {
        *self.advanced.lock().unwrap() += n;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_build_retrieve_verify_over_grpc() {
    let server = TestServer::start(Limits::default()).await;
    let builder = server.client(Some("t-builder")).await;
    let reader = server.client(Some("t-reader")).await;

    // Upload a directory corpus (sent as canonical JSONL) and a JSONL file.
    let snap = builder.import(&handbook(), None).await.unwrap();
    assert_eq!(snap.documents, 66);
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("tiny.jsonl");
    std::fs::write(&file, "{\"id\":\"a\",\"text\":\"alpha beta gamma\",\"acl\":[\"*\"]}\n{\"id\":\"b\",\"text\":\"beta delta\",\"acl\":[\"group:x\"]}\n").unwrap();
    let tiny = builder.import(&file, None).await.unwrap();
    assert_eq!(
        reader
            .snapshot(tiny.snapshot_id.as_str())
            .await
            .unwrap()
            .documents,
        2
    );
    assert_eq!(reader.snapshots().await.unwrap().len(), 2);

    // Build with a non-default spec, watching progress stream in.
    let recorder = Arc::new(Recorder::default());
    let spec = "version = 1\n[chunking]\nstrategy = \"fixed\"\nmax_tokens = 64\noverlap = 8\n";
    let built = builder
        .build(snap.snapshot_id.as_str(), Some(spec), recorder.clone())
        .await
        .unwrap();
    assert!(!built.reused);
    let stages: Vec<String> = recorder
        .stages
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.0.clone())
        .collect();
    assert_eq!(stages, ["chunk", "embed", "hnsw", "bm25", "write"]);
    assert!(*recorder.advanced.lock().unwrap() > 0);
    let again = builder
        .build(
            snap.snapshot_id.as_str(),
            Some(spec),
            Arc::new(quire_index::NoProgress),
        )
        .await
        .unwrap();
    assert!(again.reused);
    assert_eq!(again.manifest.content_digest, built.manifest.content_digest);

    // Retrieve in every mode, by name and by id prefix, with lineage and timings.
    let id = built.manifest.index_id.to_string();
    for mode in [Mode::Hybrid, Mode::Bm25, Mode::Vector] {
        let r = reader
            .retrieve(
                &id[..16],
                query("how long is parental leave", &["all-staff"], mode, 5),
                None,
            )
            .await
            .unwrap();
        assert!(!r.hits.is_empty(), "{mode:?}");
        assert_eq!(r.lineage.index_id.as_str(), id);
        assert!(r.timings_us.total > 0);
        let r = reader
            .retrieve(
                "handbook",
                query("incident severity", &["eng"], mode, 5),
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.lineage.alias.as_deref(), Some("handbook"));
        assert!(
            r.hits
                .iter()
                .all(|h| !h.doc_id.starts_with("hr/compensation"))
        );
    }
    // Permissions hold over the wire: the engineer never sees the Heron price.
    let r = reader
        .retrieve(
            "handbook",
            query(
                "Project Heron proposed price $184 million",
                &["eng", "all-staff"],
                Mode::Hybrid,
                50,
            ),
            None,
        )
        .await
        .unwrap();
    assert!(r.hits.iter().all(|h| !h.text.contains("$184 million")));
    let r = reader
        .retrieve(
            "handbook",
            query(
                "Project Heron proposed price $184 million",
                &["execs"],
                Mode::Bm25,
                5,
            ),
            None,
        )
        .await
        .unwrap();
    assert!(r.hits.iter().any(|h| h.text.contains("$184 million")));

    let report = builder.verify(&id).await.unwrap();
    assert!(report.verification.ok);
    let check = builder
        .rebuild_check(&id, Arc::new(quire_index::NoProgress))
        .await
        .unwrap();
    assert!(check.ok);
    let listed = reader.indexes().await.unwrap();
    assert_eq!(listed.len(), 2);
    let info = reader.index("handbook").await.unwrap();
    assert_eq!(info.manifest.counts.documents, 66);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_matrix() {
    let server = TestServer::start(Limits::default()).await;
    let hb = handbook();
    for (token, role) in [(None, None), (Some("wrong"), None)]
        .into_iter()
        .chain(TOKENS.iter().map(|(t, r)| (Some(*t), Some(*r))))
    {
        let c = server.client(token).await;
        let read = c
            .retrieve(
                "handbook",
                query("leave", &["all-staff"], Mode::Bm25, 3),
                None,
            )
            .await;
        let list = c.indexes().await;
        let import = c.import(&hb, None).await;
        let verify = c.verify("handbook").await;
        let build = c
            .build("snap-000000000000", None, Arc::new(quire_index::NoProgress))
            .await;
        match role {
            None => {
                for e in [read.err(), list.err(), import.err(), verify.err()] {
                    assert_eq!(
                        e.as_ref().map(code),
                        Some(Code::Unauthenticated),
                        "token {token:?}"
                    );
                }
                assert_eq!(build.err().as_ref().map(code), Some(Code::Unauthenticated));
            }
            Some(Role::Reader) => {
                assert!(read.is_ok() && list.is_ok());
                assert_eq!(
                    import.err().as_ref().map(code),
                    Some(Code::PermissionDenied)
                );
                assert_eq!(
                    verify.err().as_ref().map(code),
                    Some(Code::PermissionDenied)
                );
                assert_eq!(build.err().as_ref().map(code), Some(Code::PermissionDenied));
            }
            Some(_) => {
                assert!(
                    read.is_ok() && list.is_ok() && import.is_ok() && verify.is_ok(),
                    "role {role:?}"
                );
                // Allowed, and then refused for what it is: no such snapshot.
                assert_eq!(build.err().as_ref().map(code), Some(Code::NotFound));
            }
        }
    }
    server.stop().await;
}

async fn raw_retrieve(
    server: &TestServer,
    request: pb::RetrieveRequest,
) -> Result<pb::RetrieveResponse, tonic::Status> {
    let mut client = pb::retrieval_service_client::RetrievalServiceClient::connect(server.url())
        .await
        .unwrap();
    let mut request = tonic::Request::new(request);
    request
        .metadata_mut()
        .insert("authorization", "Bearer t-reader".parse().unwrap());
    client
        .retrieve(request)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_malformed_requests_get_precise_codes_and_the_server_keeps_serving() {
    let limits = Limits {
        max_k: 20,
        max_query_bytes: 200,
        max_request_bytes: 4096,
        max_upload_bytes: 2048,
        ..Limits::default()
    };
    let server = TestServer::start(limits).await;
    let ok = pb::RetrieveRequest {
        target: "handbook".into(),
        query: "expense receipts".into(),
        principal: Some(pb::Principal {
            user: "u".into(),
            groups: vec!["all-staff".into()],
        }),
        k: 5,
        ..Default::default()
    };
    let cases = [
        (
            pb::RetrieveRequest {
                k: 21,
                ..ok.clone()
            },
            Code::InvalidArgument,
            "exceeds this server's limit of 20",
        ),
        (
            pb::RetrieveRequest {
                k: 5000,
                ..ok.clone()
            },
            Code::InvalidArgument,
            "field `k`",
        ),
        (
            pb::RetrieveRequest {
                query: "word ".repeat(50),
                ..ok.clone()
            },
            Code::InvalidArgument,
            "field `query`",
        ),
        (
            pb::RetrieveRequest {
                query: "x".repeat(5000),
                ..ok.clone()
            },
            Code::ResourceExhausted,
            "exceeds the limit of 4096 bytes",
        ),
        (
            pb::RetrieveRequest {
                target: String::new(),
                ..ok.clone()
            },
            Code::InvalidArgument,
            "field `target`",
        ),
        (
            pb::RetrieveRequest {
                query: "  ".into(),
                ..ok.clone()
            },
            Code::InvalidArgument,
            "field `query`: is empty",
        ),
        (
            pb::RetrieveRequest {
                mode: 9,
                ..ok.clone()
            },
            Code::InvalidArgument,
            "field `mode`",
        ),
        (
            pb::RetrieveRequest {
                fusion: 9,
                ..ok.clone()
            },
            Code::InvalidArgument,
            "field `fusion`",
        ),
        (
            pb::RetrieveRequest {
                principal: Some(pb::Principal {
                    user: "a b".into(),
                    groups: vec![],
                }),
                ..ok.clone()
            },
            Code::InvalidArgument,
            "principal",
        ),
        (
            pb::RetrieveRequest {
                target: "idx-0123456789abcdef".into(),
                ..ok.clone()
            },
            Code::NotFound,
            "no index matches",
        ),
        (
            pb::RetrieveRequest {
                target: "idx-01".into(),
                ..ok.clone()
            },
            Code::InvalidArgument,
            "too short",
        ),
    ];
    for (request, want, message) in cases {
        let status = raw_retrieve(&server, request)
            .await
            .expect_err("should fail");
        assert_eq!(status.code(), want, "{}", status.message());
        assert!(
            status.message().contains(message),
            "{:?} should mention {message:?}",
            status.message()
        );
        assert!(
            !raw_retrieve(&server, ok.clone())
                .await
                .unwrap()
                .hits
                .is_empty(),
            "the server must keep serving"
        );
    }

    let builder = server.client(Some("t-builder")).await;
    let dir = TempDir::new().unwrap();
    let big = dir.path().join("big.jsonl");
    std::fs::write(
        &big,
        format!("{{\"id\":\"a\",\"text\":\"{}\"}}\n", "word ".repeat(1000)),
    )
    .unwrap();
    let err = builder.import(&big, None).await.err().unwrap();
    assert_eq!(code(&err), Code::ResourceExhausted, "{err}");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\":\"a\",\"text\":\"x\"}\n{\"id\": 3}\n").unwrap();
    let err = builder.import(&bad, None).await.err().unwrap();
    assert_eq!(code(&err), Code::InvalidArgument);
    assert!(
        err.to_string()
            .contains("bad.jsonl:2: `id` must be a string"),
        "{err}"
    );
    let snap = builder.snapshots().await.unwrap()[0]
        .snapshot_id
        .to_string();
    let err = builder
        .build(
            &snap,
            Some("version = 1\n[hnsw]\nm = 1\nef_construction = 4\nef_search = 4\n"),
            Arc::new(quire_index::NoProgress),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(code(&err), Code::InvalidArgument);
    assert!(
        err.to_string().contains("spec_toml: field `hnsw.m` = 1"),
        "{err}"
    );
    assert!(
        !raw_retrieve(&server, ok.clone())
            .await
            .unwrap()
            .hits
            .is_empty()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_cap_and_deadline_refuse_instead_of_hanging() {
    let limits = Limits {
        max_concurrent_requests: 1,
        request_timeout_ms: 40,
        ..Limits::default()
    };
    let server = TestServer::start(limits).await;
    let builder = server.client(Some("t-builder")).await;
    // A corpus big enough that rebuilding it outlasts the 40 ms deadline.
    let dir = TempDir::new().unwrap();
    let corpus = dir.path().join("c.jsonl");
    let lines: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                "{{\"id\":\"d{i}\",\"text\":\"{}\",\"acl\":[\"*\"]}}",
                format!("w{} ", i % 97).repeat(60)
            )
        })
        .collect();
    std::fs::write(&corpus, lines.join("\n")).unwrap();
    let snap = builder.import(&corpus, None).await.unwrap();
    let built = builder
        .build(
            snap.snapshot_id.as_str(),
            None,
            Arc::new(quire_index::NoProgress),
        )
        .await
        .unwrap();
    let id = built.manifest.index_id.to_string();

    // The slow call itself may be the one refused (when a poll below holds the only
    // permit at the moment it arrives), so retry until one attempt both saw another
    // request refused while it ran and itself ran into the deadline.
    let mut proven = false;
    for _attempt in 0..20 {
        let slow = {
            let b = builder.clone();
            let id = id.clone();
            tokio::spawn(async move {
                b.rebuild_check(&id, Arc::new(quire_index::NoProgress))
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let mut refused = false;
        while !slow.is_finished() {
            match builder.indexes().await {
                Err(e) if code(&e) == Code::ResourceExhausted => refused = true,
                _ => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
            }
        }
        let slow = slow
            .await
            .unwrap()
            .expect_err("the rebuild cannot finish in 40 ms");
        match code(&slow) {
            Code::ResourceExhausted => continue,
            Code::DeadlineExceeded if refused => {
                proven = true;
                break;
            }
            Code::DeadlineExceeded => continue,
            other => panic!("unexpected status {other:?} for the slow call: {slow}"),
        }
    }
    assert!(
        proven,
        "no attempt showed a second request refused while a slow one held the only slot \
         and the slow one stopped at the deadline"
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        builder.indexes().await.unwrap().len(),
        2,
        "the server keeps serving"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving() {
    let server = TestServer::start(Limits::default()).await;
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in [
        "quire.v1.RetrievalService",
        "quire.v1.IndexService",
        "quire.v1.SnapshotService",
    ] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            status.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
    server.stop().await;
}

#[test]
fn open_servers_refuse_non_loopback_addresses() {
    let open = ServerConfig::default();
    assert!(serve::check_exposure("127.0.0.1:1".parse().unwrap(), &open).is_ok());
    let err = serve::check_exposure("0.0.0.0:1".parse().unwrap(), &open)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("refusing to serve 0.0.0.0:1 without authentication"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_without_proto_files() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = TestServer::start(Limits::default()).await;
    let channel = tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "quire.v1.RetrievalService",
        "quire.v1.IndexService",
        "quire.v1.SnapshotService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_the_certificate() {
    let dir = TempDir::new().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let (cert, key, ca) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    let server = TestServer::start_with(Limits::default(), Some(Tls { cert, key })).await;
    let url = format!("https://{}", server.addr);
    let client = Remote::connect(&url, Some("t-reader".into()), Some(&ca))
        .await
        .unwrap();
    let r = client
        .retrieve(
            "handbook",
            query("parental leave", &["all-staff"], Mode::Hybrid, 3),
            None,
        )
        .await
        .unwrap();
    assert!(!r.hits.is_empty());
    // A plaintext client gets nowhere.
    let plain = Remote::connect(&server.url(), Some("t-reader".into()), None).await;
    let refused = match plain {
        Err(_) => true,
        Ok(c) => c.indexes().await.is_err(),
    };
    assert!(
        refused,
        "a plaintext client must not be served by a TLS server"
    );
    server.stop().await;
}
