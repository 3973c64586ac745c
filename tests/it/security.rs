//! Issue 14 over real gRPC on 127.0.0.1: corpora read in bounded memory, server paths only
//! under configured roots, and principals bound to verified identity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use quire_proto::pb;
use quire_server::Limits;
use tonic::Code;

use quire_testkit::server as support;

use support::{TestServer, query};

/// `ImportSnapshot` with `header` and then `chunks`, as `token`.
async fn raw_import(
    server: &TestServer,
    token: &str,
    header: pb::ImportHeader,
    chunks: Vec<Vec<u8>>,
) -> Result<pb::Snapshot, tonic::Status> {
    let mut client = pb::snapshot_service_client::SnapshotServiceClient::connect(server.url())
        .await
        .unwrap();
    let mut messages = vec![pb::ImportSnapshotRequest {
        item: Some(pb::import_snapshot_request::Item::Header(header)),
    }];
    messages.extend(chunks.into_iter().map(|c| pb::ImportSnapshotRequest {
        item: Some(pb::import_snapshot_request::Item::Chunk(c)),
    }));
    let mut request = tonic::Request::new(tokio_stream::iter(messages));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    client
        .import_snapshot(request)
        .await
        .map(tonic::Response::into_inner)
}

/// The server still answers a reader.
async fn still_serving(server: &TestServer) {
    use quire_server::QuireApi;
    let reader = server.client(Some("t-reader")).await;
    let r = reader
        .retrieve(
            "handbook",
            query("parental leave", &["all-staff"], quire_index::Mode::Bm25, 3),
            None,
        )
        .await
        .unwrap();
    assert!(!r.hits.is_empty(), "the server must keep serving");
}

/// Finding 3: `/dev/zero` is one endless line. Read on the server or uploaded by a client that
/// streams it, it is refused as the caller's error (INVALID_ARGUMENT) naming the file and line,
/// and the server keeps serving. (Before the fix this aborted the process on allocation.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_lines_are_refused_remotely() {
    use quire_server::QuireApi;
    let server = TestServer::start(Limits::default()).await;
    let header = pb::ImportHeader {
        format: pb::CorpusFormat::Jsonl as i32,
        file_name: String::new(),
        server_path: "/dev/zero".into(),
    };
    let status = raw_import(&server, "t-builder", header, vec![])
        .await
        .expect_err("an endless line");
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert!(
        status
            .message()
            .contains("/dev/zero:1: line is longer than 16777216 bytes"),
        "{}",
        status.message()
    );
    still_serving(&server).await;

    let builder = server.client(Some("t-builder")).await;
    let err = builder
        .import(
            std::path::Path::new("/dev/zero"),
            Some(quire_store::CorpusFormat::Jsonl),
        )
        .await
        .expect_err("an endless upload");
    assert_eq!(support::code(&err), Code::InvalidArgument, "{err}");
    assert!(
        err.to_string()
            .contains("/dev/zero:1: line is longer than 16777216 bytes"),
        "{err}"
    );
    still_serving(&server).await;

    // A chunked upload whose line ends in time is fine, however it is split.
    let body =
        b"{\"id\":\"a\",\"text\":\"alpha\",\"acl\":[\"*\"]}\n{\"id\":\"b\",\"text\":\"beta\"}";
    let header = pb::ImportHeader {
        format: pb::CorpusFormat::Jsonl as i32,
        file_name: "split.jsonl".into(),
        server_path: String::new(),
    };
    let chunks = body.chunks(7).map(<[u8]>::to_vec).collect();
    let snap = raw_import(&server, "t-builder", header, chunks)
        .await
        .unwrap();
    assert_eq!(snap.documents, 2);
    server.stop().await;
}
