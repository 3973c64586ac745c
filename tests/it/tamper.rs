//! Issue 14, item 6 over real gRPC: an index is served only once every file's blake3 matches
//! its manifest, so a file edited on disk after publishing is refused, naming it, before it
//! can answer a query.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;

use quire_index::Mode;
use quire_server::{Limits, QuireApi, ReleaseApi};
use quire_testkit::server::{self as support, TestServer, query};
use tonic::Code;

/// The finding: a same-size edit of `acl.jsonl` that turned the executives' documents public
/// made vector mode return one to an anonymous reader (size checks passed). Now the index is
/// refused with FAILED_PRECONDITION naming the file and the index, whatever the mode; nothing
/// stored changes (the edited file stays as it is, the alias keeps its revision), and once
/// the file is restored the same server answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_edited_after_publishing_is_refused_naming_it() {
    let server = TestServer::start(Limits::default()).await;
    let admin = server.client(Some("t-admin")).await;
    let index = admin.index("handbook").await.unwrap().manifest.index_id;
    let alias = admin.alias("handbook").await.unwrap();
    let acl = server
        .data_dir()
        .join("indexes")
        .join(index.as_str())
        .join("acl.jsonl");
    let original = std::fs::read(&acl).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    // The same bytes but for executives' ACLs, which become public (JSON allows the spaces).
    let tampered = text.replace("[\"group:execs\"]", "[\"*\"          ]");
    assert_ne!(tampered, text, "the handbook has executives' documents");
    assert_eq!(tampered.len(), text.len());
    let mode = std::fs::metadata(&acl).unwrap().permissions();
    std::fs::set_permissions(&acl, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&acl, &tampered).unwrap();

    let reader = server.client(Some("t-reader")).await;
    for mode in [Mode::Vector, Mode::Bm25, Mode::Hybrid] {
        let err = reader
            .retrieve(
                "handbook",
                query("board strategy acquisition", &[], mode, 10),
                None,
            )
            .await
            .expect_err("a tampered index must not answer");
        assert_eq!(support::code(&err), Code::FailedPrecondition, "{err}");
        let message = err.to_string();
        assert!(
            message.contains("acl.jsonl: blake3 ") && message.contains("changed since index"),
            "{message}"
        );
        assert!(message.contains(index.as_str()), "{message}");
    }
    assert_eq!(
        std::fs::read(&acl).unwrap(),
        tampered.as_bytes(),
        "left as found"
    );
    let after = admin.alias("handbook").await.unwrap();
    assert_eq!(after.revision, alias.revision);

    std::fs::write(&acl, &original).unwrap();
    std::fs::set_permissions(&acl, mode).unwrap();
    let answer = reader
        .retrieve(
            "handbook",
            query("board strategy acquisition", &[], Mode::Vector, 10),
            None,
        )
        .await
        .unwrap();
    assert!(
        answer.hits.iter().all(|h| !h.doc_id.starts_with("execs/")),
        "{:?}",
        answer.hits
    );
    server.stop().await;
}
