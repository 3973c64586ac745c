//! Releases end to end over real gRPC: aliases flipped under load, canary stickiness, shadow
//! comparison, refused deletes, and the audit trail of denied attempts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use quire_testkit::server as support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use quire_index::{Arm, Mode};
use quire_server::{Limits, QuireApi, ReleaseApi, Remote};
use quire_store::AliasChangeRequest;
use support::{TestServer, code, query};
use tonic::Code;

/// A second handbook index beside the demo's, with sentence chunking.
const SENTENCES: &str =
    "version = 1\ndefault_acl = [\"*\"]\n[chunking]\nstrategy = \"sentences\"\nmax_tokens = 64\n";

async fn two_indexes(server: &TestServer) -> (Remote, String, String) {
    support::two_indexes(server, SENTENCES).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn promote_and_rollback_under_load_never_fail_a_request() {
    let server = TestServer::start(Limits::default()).await;
    let (admin, old, new) = two_indexes(&server).await;
    let releaser = server.client(Some("t-releaser")).await;
    let alias = |c| AliasChangeRequest::Set(c);
    releaser
        .change_alias("prod", alias(old.clone()), "start", false)
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // The revision after which only `expected` may answer, set once a change has returned.
    let settled = Arc::new(std::sync::Mutex::new((1u64, old.clone())));
    let served = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for c in 0..4 {
        let reader = server.client(Some("t-reader")).await;
        let (stop, settled, served) = (stop.clone(), settled.clone(), served.clone());
        let (old, new) = (old.clone(), new.clone());
        clients.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let floor = settled.lock().unwrap().clone();
                let r = reader
                    .retrieve(
                        "prod",
                        query("parental leave", &["all-staff"], Mode::Hybrid, 3),
                        Some(format!("client-{c}-{i}")),
                    )
                    .await
                    .expect("no request may fail during a flip");
                let id = r.lineage.index_id.to_string();
                assert!(id == old || id == new, "served by a stranger {id}");
                let revision = r.lineage.revision.unwrap();
                assert!(
                    revision >= floor.0,
                    "revision {revision} went back past {}",
                    floor.0
                );
                if revision == floor.0 {
                    assert_eq!(id, floor.1, "after a change returned, its index answers");
                }
                assert_eq!(r.lineage.arm, Some(Arm::Primary));
                served.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    for flip in 0..100 {
        let (change, expect) = if flip % 2 == 0 {
            (AliasChangeRequest::Set(new.clone()), new.clone())
        } else {
            (AliasChangeRequest::Rollback(None), old.clone())
        };
        let r = releaser
            .change_alias("prod", change, "flip", false)
            .await
            .unwrap();
        assert_eq!(r.state.primary.to_string(), expect);
        *settled.lock().unwrap() = (r.revision, expect);
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert!(served.load(Ordering::Relaxed) > 100);
    let history = admin.alias_history("prod").await.unwrap();
    assert_eq!(history.len(), 101);
    assert_eq!(
        admin.alias("prod").await.unwrap().state.primary.to_string(),
        old
    );
    // What served at revision 2 is still reachable exactly.
    let pinned = admin
        .retrieve(
            "prod@2",
            query("parental leave", &["all-staff"], Mode::Bm25, 3),
            None,
        )
        .await
        .unwrap();
    assert_eq!(pinned.lineage.index_id.to_string(), new);
    assert!(admin.audit_verify().await.unwrap().ok);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_keys_stick_to_one_arm_and_the_share_holds() {
    let server = TestServer::start(Limits::default()).await;
    let (admin, old, new) = two_indexes(&server).await;
    admin
        .change_alias("prod", AliasChangeRequest::Set(old.clone()), "start", false)
        .await
        .unwrap();
    admin
        .change_alias(
            "prod",
            AliasChangeRequest::Canary(new[..16].to_owned(), 10.0),
            "try sentences",
            false,
        )
        .await
        .unwrap();
    let mut canary = 0;
    for i in 0..400 {
        let key = format!("user-{i}");
        let q = || query("incident", &["eng"], Mode::Bm25, 2);
        let a = admin
            .retrieve("prod", q(), Some(key.clone()))
            .await
            .unwrap();
        let b = admin.retrieve("prod", q(), Some(key)).await.unwrap();
        assert_eq!(a.lineage.arm, b.lineage.arm, "a key keeps its arm");
        let expected = if a.lineage.arm == Some(Arm::Canary) {
            canary += 1;
            &new
        } else {
            &old
        };
        assert_eq!(&a.lineage.index_id.to_string(), expected);
        assert_eq!(a.lineage.alias.as_deref(), Some("prod"));
        assert_eq!(a.lineage.revision, Some(2));
    }
    // 400 keys at 10%: 40 expected; the exact 10,000-key check runs in quire-store.
    assert!((20..=62).contains(&canary), "{canary} of 400 on the canary");
    let promoted = admin
        .change_alias(
            "prod",
            AliasChangeRequest::Promote,
            "canary is healthy",
            false,
        )
        .await
        .unwrap();
    assert_eq!(promoted.state.primary.to_string(), new);
    assert!(promoted.state.canary.is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadows_are_compared_and_live_indices_cannot_be_deleted() {
    let server = TestServer::start(Limits::default()).await;
    let (admin, old, new) = two_indexes(&server).await;
    admin
        .change_alias("prod", AliasChangeRequest::Set(old.clone()), "start", false)
        .await
        .unwrap();
    admin
        .change_alias(
            "prod",
            AliasChangeRequest::Shadow(new.clone()),
            "compare",
            false,
        )
        .await
        .unwrap();
    for text in [
        "parental leave",
        "incident severity",
        "expense report",
        "laptop",
    ] {
        let r = admin
            .retrieve(
                "prod",
                query(text, &["all-staff", "eng"], Mode::Hybrid, 5),
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            r.lineage.index_id.to_string(),
            old,
            "the shadow never answers"
        );
    }
    let mut report = admin.shadow_report("prod").await.unwrap();
    for _ in 0..100 {
        if report.compared + report.dropped + report.failed >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        report = admin.shadow_report("prod").await.unwrap();
    }
    assert_eq!(report.shadow_index.as_ref().unwrap().to_string(), new);
    assert_eq!(report.failed, 0);
    assert!(report.compared >= 1, "{report:?}");
    assert!((0.0..=1.0).contains(&report.jaccard.mean));
    assert!((0.0..=1.0).contains(&report.rbo.mean));

    for id in [&old, &new] {
        let err = admin.delete_index(id, "cleanup").await.unwrap_err();
        assert_eq!(code(&err), Code::FailedPrecondition, "{err}");
    }
    let releaser = server.client(Some("t-releaser")).await;
    releaser
        .pin(&new, "eval-2026", Some("7d"), "hold for the evaluation")
        .await
        .unwrap();
    let dry = releaser.gc(true, "").await.unwrap();
    assert!(dry.deleted_indexes.is_empty(), "{dry:?}");
    let live: BTreeSet<String> = dry.kept.keys().map(ToString::to_string).collect();
    assert!(live.contains(&old) && live.contains(&new));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_attempts_and_changes_are_audited_without_document_text() {
    let server = TestServer::start(Limits::default()).await;
    let reader = server.client(Some("t-reader")).await;
    let builder = server.client(Some("t-builder")).await;
    let admin = server.client(Some("t-admin")).await;
    let handbook_index = admin.index("handbook").await.unwrap().manifest.index_id;
    let err = builder
        .change_alias(
            "prod",
            AliasChangeRequest::Set(handbook_index.to_string()),
            "sneaky",
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::PermissionDenied);
    let err = reader.gc(false, "oops").await.unwrap_err();
    assert_eq!(code(&err), Code::PermissionDenied);
    let err = admin
        .change_alias("prod", AliasChangeRequest::Promote, "", false)
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::InvalidArgument, "{err}");
    admin
        .change_alias(
            "prod",
            AliasChangeRequest::Set(handbook_index.to_string()),
            "go live",
            false,
        )
        .await
        .unwrap();
    let log = admin.audit_log().await.unwrap();
    let seen: Vec<(String, String, String)> = log
        .iter()
        .map(|e| (e.actor.clone(), e.action.clone(), e.target.clone()))
        .collect();
    for want in [
        ("Builder", "auth.denied", "ChangeAlias"),
        ("Reader", "auth.denied", "CollectGarbage"),
        ("Admin", "alias.set", "prod"),
    ] {
        assert!(
            seen.iter()
                .any(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()) == want),
            "{want:?} missing from {seen:?}"
        );
    }
    let text = serde_json::to_string(&log).unwrap();
    assert!(
        !text.contains("parental"),
        "the audit log must not hold document text"
    );
    let verified = admin.audit_verify().await.unwrap();
    assert!(verified.ok);
    assert_eq!(verified.events, log.len() as u64);
    server.stop().await;
}
