//! Issue 14, item 4 over real gRPC: a build stops when its deadline passes or its client goes
//! away, publishing nothing and leaving nothing behind; a rebuild-check takes the one build
//! slot like any build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use quire_proto::pb;
use quire_server::{Limits, QuireApi};
use quire_testkit::server::{TestServer, handbook};
use tonic::Code;

/// A build whose deadline has passed by the time it could start (1 ns) is cancelled at its
/// first block boundary: the client gets DEADLINE_EXCEEDED, no index is published (only the
/// demo's is listed, and no `index.build` event is recorded), and `tmp/` is empty. The
/// rebuild-check that follows waits for the build slot, so the cancelled build has finished
/// before anything is inspected. (Before the fix, the build ran to completion and published.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_past_its_deadline_stops_and_leaves_nothing() {
    let server = TestServer::start(Limits::default()).await;
    let admin = server.client(Some("t-admin")).await;
    let snapshot = admin.import(&handbook(), None).await.unwrap().snapshot_id;
    let mut client = pb::index_service_client::IndexServiceClient::connect(server.url())
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::BuildIndexRequest {
        snapshot_id: snapshot.to_string(),
        spec_toml: "version = 1\n[chunking]\nstrategy = \"sentences\"\nmax_tokens = 48\n".into(),
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer t-builder".parse().unwrap());
    request.set_timeout(Duration::from_nanos(1));
    let outcome = async {
        let mut events = client.build_index(request).await?.into_inner();
        while events.message().await?.is_some() {}
        Ok::<(), tonic::Status>(())
    }
    .await;
    let status = outcome.expect_err("the deadline has passed");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );

    // Waits for the build slot, so the cancelled build is over once it answers.
    let check = admin
        .rebuild_check("handbook", std::sync::Arc::new(quire_index::NoProgress))
        .await;
    assert!(check.unwrap().ok);
    let indexes = admin.indexes().await.unwrap();
    assert_eq!(indexes.len(), 1, "only the demo index: {indexes:?}");
    let tmp: Vec<_> = std::fs::read_dir(server.data_dir().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(tmp.is_empty(), "left behind: {tmp:?}");
    server.stop().await;
}
