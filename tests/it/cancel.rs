//! Issue 14, item 4 over real gRPC: a build, a rebuild-check and an evaluation stop when their
//! deadline passes or their client goes away, publishing or storing nothing and leaving
//! nothing behind; a rebuild-check takes the one build slot like any build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quire_index::{Mode, NoProgress};
use quire_proto::pb;
use quire_server::{EvalApi, Limits, QuireApi};
use quire_testkit::server::{TestServer, handbook};
use tonic::Code;

/// `request` with `token` as its bearer token.
fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// What `dir` holds.
fn entries(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect()
}

/// Wait until `done` holds, at most `limit`; how long it took.
async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// A corpus that takes seconds to build: `n` public documents of 200 words each.
fn slow_corpus(dir: &Path, n: usize) -> PathBuf {
    let words = [
        "leave", "salary", "band", "deploy", "rollback", "incident", "budget", "invoice",
        "contract", "privacy", "laptop", "password", "review", "offer", "heron", "price", "board",
        "travel", "expense", "policy", "engineer", "finance", "legal", "weeks", "audit", "vendor",
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut lines = String::new();
    for i in 0..n {
        let text: Vec<&str> = (0..200)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                words[(state % words.len() as u64) as usize]
            })
            .collect();
        let doc =
            serde_json::json!({"id": format!("doc{i:05}"), "text": text.join(" "), "acl": ["*"]});
        lines.push_str(&doc.to_string());
        lines.push('\n');
    }
    let path = dir.join("slow.jsonl");
    std::fs::write(&path, lines).unwrap();
    path
}

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
    let check = admin.rebuild_check("handbook", Arc::new(NoProgress)).await;
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

/// A rebuild-check and a build whose client goes away stop at their next block boundary
/// instead of running to the end. A whole build of the corpus is timed first: that is how long
/// work that does not stop would go on. The rebuild's scratch dir in `tmp/` is gone within a
/// third of that once the client has gone (before the fix, the rebuild ran on to its end: it
/// only stopped at the server's own deadline); the build publishes nothing and leaves nothing
/// in `tmp/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_check_or_build_whose_client_goes_away_stops() {
    let server = TestServer::start(Limits::default()).await;
    let admin = server.client(Some("t-admin")).await;
    let dir = tempfile::tempdir().unwrap();
    let snapshot = admin
        .import(&slow_corpus(dir.path(), 3_000), None)
        .await
        .unwrap()
        .snapshot_id;
    let started = Instant::now();
    let built = admin
        .build(&snapshot.to_string(), None, Arc::new(NoProgress))
        .await
        .unwrap();
    let whole = started.elapsed();
    let tmp = server.data_dir().join("tmp");
    let indexes = admin.indexes().await.unwrap().len();

    // Rebuild-check: the client goes away once the rebuild is under way.
    let (url, target) = (server.url(), built.manifest.index_id.to_string());
    let call = tokio::spawn(async move {
        let mut client = pb::index_service_client::IndexServiceClient::connect(url)
            .await
            .unwrap();
        let request = with_token(pb::RebuildCheckRequest { target }, "t-builder");
        client.rebuild_check(request).await
    });
    wait_for(Duration::from_secs(30), || !entries(&tmp).is_empty())
        .await
        .expect("the rebuild starts");
    call.abort();
    let stopped = wait_for(whole, || entries(&tmp).is_empty()).await;
    assert!(
        stopped.is_some_and(|s| s < whole / 3),
        "the rebuild ran on {stopped:?} after its client went away (a whole build takes {whole:?})"
    );

    // Build: the client goes away after the first stage begins.
    let mut client = pb::index_service_client::IndexServiceClient::connect(server.url())
        .await
        .unwrap();
    let request = pb::BuildIndexRequest {
        snapshot_id: snapshot.to_string(),
        spec_toml: "version = 1\n[chunking]\nstrategy = \"fixed\"\nmax_tokens = 64\n".into(),
    };
    let mut events = client
        .build_index(with_token(request, "t-builder"))
        .await
        .unwrap()
        .into_inner();
    while let Some(event) = events.message().await.unwrap() {
        if matches!(event.event, Some(pb::build_index_event::Event::Stage(_))) {
            break;
        }
    }
    drop(events);
    drop(client);
    let gone = Instant::now();
    // Waits for the build slot, so the abandoned build is over once it answers.
    let check = admin.rebuild_check("handbook", Arc::new(NoProgress)).await;
    assert!(check.unwrap().ok);
    assert!(
        gone.elapsed() < whole,
        "the build ran on {:?} after its client went away (a whole build takes {whole:?})",
        gone.elapsed()
    );
    assert_eq!(
        admin.indexes().await.unwrap().len(),
        indexes,
        "nothing published"
    );
    assert!(entries(&tmp).is_empty(), "left behind: {:?}", entries(&tmp));
    server.stop().await;
}

/// An evaluation whose client goes away stops between queries and stores no report. The
/// dataset's queries are the handbook's judged ones, repeated so that a whole evaluation takes
/// about 2 s (timed on a small one first); the client leaves after 300 ms, and once the whole
/// evaluation would have finished (and a margin), only the small one's report is stored.
/// (Before the fix, the evaluation ran on and stored its report.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_whose_client_goes_away_stops_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with_roots(&[dir.path()]).await;
    let admin = server.client(Some("t-admin")).await;
    let judged = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/handbook-eval");
    let texts: Vec<String> = std::fs::read_to_string(judged.join("queries.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let dataset = |name: &str, n: usize| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.join("qrels")).unwrap();
        std::fs::copy(judged.join("corpus.jsonl"), path.join("corpus.jsonl")).unwrap();
        let (mut queries, mut qrels) =
            (String::new(), String::from("query-id\tcorpus-id\tscore\n"));
        for i in 0..n {
            let query = serde_json::json!({"_id": format!("q{i}"), "text": texts[i % texts.len()]});
            queries.push_str(&format!("{query}\n"));
            qrels.push_str(&format!("q{i}\thr/parental-leave-policy.md\t1\n"));
        }
        std::fs::write(path.join("queries.jsonl"), queries).unwrap();
        std::fs::write(path.join("qrels/test.tsv"), qrels).unwrap();
        path
    };
    let everyone = crate::eval::everyone();
    let request = |path: PathBuf| quire_server::EvalRequest {
        dataset: path,
        split: "test".into(),
        mode: Mode::Hybrid,
        reader: everyone.clone(),
        ignore_identical_ids: true,
    };
    let small = 400;
    let started = Instant::now();
    admin
        .evaluate("handbook", request(dataset("small", small)))
        .await
        .unwrap();
    let per_query = started.elapsed() / small as u32;
    let n = (Duration::from_secs(2).as_nanos() / per_query.as_nanos().max(1)) as usize;
    let whole = per_query * n as u32;
    let big = dataset("big", n);

    let url = server.url();
    let message = quire_proto::eval::evaluate_request(
        "handbook",
        &big,
        "test",
        Mode::Hybrid,
        &everyone,
        true,
    );
    let started = Instant::now();
    let call = tokio::spawn(async move {
        let mut client = pb::eval_service_client::EvalServiceClient::connect(url)
            .await
            .unwrap();
        client.evaluate(with_token(message, "t-builder")).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !call.is_finished(),
        "the evaluation of {n} queries ended within 300 ms"
    );
    call.abort();
    tokio::time::sleep(
        (whole * 3 / 2 + Duration::from_millis(500)).saturating_sub(started.elapsed()),
    )
    .await;
    let reports: Vec<String> = admin
        .reports(None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.report_id)
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "only the small evaluation's report: {reports:?}"
    );
    server.stop().await;
}

/// A canary evaluation past its deadline stops between samples: it stores no report (and so
/// rolls nothing back). The alias `prod` has a canary and a few thousand sampled requests; a
/// whole evaluation of them is timed first (storing one report), then the same evaluation is
/// asked with a deadline of a quarter of that. Once the whole evaluation would have finished
/// (and a margin), only the first report is stored. (Before the fix, the evaluation ran on
/// after its deadline and stored a second report.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_evaluation_past_its_deadline_stops_and_stores_nothing() {
    use quire_server::{CanaryApi, ReleaseApi, RequestMeta, ServerConfig};
    use quire_store::{AliasChangeRequest, CanaryEvalRequest, CandidateArm, Intent};

    let mut config = ServerConfig::from_toml(
        "version = 1\n[sampling]\nrate = 1.0\nstore_text = true\ncap_per_intent_per_hour = 1000\n",
        "server.toml",
    )
    .unwrap();
    config.tokens = quire_testkit::server::role_tokens();
    let server = TestServer::start_config(config).await;
    let admin = server.client(Some("t-admin")).await;
    let primary = admin.index("handbook").await.unwrap().manifest.index_id;
    let snapshot = admin.import(&handbook(), None).await.unwrap().snapshot_id;
    let spec = "version = 1\n[chunking]\nstrategy = \"fixed\"\nmax_tokens = 64\n";
    let canary = admin
        .build(&snapshot.to_string(), Some(spec), Arc::new(NoProgress))
        .await
        .unwrap()
        .manifest
        .index_id;
    let releaser = server.client(Some("t-releaser")).await;
    releaser
        .change_alias(
            "prod",
            AliasChangeRequest::Set(primary.to_string()),
            "t",
            false,
        )
        .await
        .unwrap();
    releaser
        .change_alias(
            "prod",
            AliasChangeRequest::Canary(canary.to_string(), 50.0),
            "t",
            false,
        )
        .await
        .unwrap();

    // Sampled traffic: 4 intents of up to 1,000 requests each, from 4 clients at once.
    let per_intent = 750;
    let texts = [
        "parental leave",
        "deploy process",
        "expense report",
        "board meeting",
    ];
    let mut senders = Vec::new();
    for (i, text) in texts.into_iter().enumerate() {
        let client = server.client(Some("t-reader")).await;
        senders.push(tokio::spawn(async move {
            for n in 0..per_intent {
                let meta = RequestMeta {
                    routing_key: Some(format!("user-{n}")),
                    intent: Some(Intent::new(&format!("intent{i}")).unwrap()),
                };
                let q = quire_testkit::server::query(
                    &format!("{text} {n}"),
                    &["all-staff"],
                    Mode::Hybrid,
                    10,
                );
                client.retrieve_with("prod", q, meta).await.unwrap();
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let want = texts.len() * per_intent;
    let listing = quire_store::SampleListing::new(Some("prod".into()), None, None, 10_000).unwrap();
    let mut samples = 0;
    for _ in 0..300 {
        samples = admin.samples(listing.clone()).await.unwrap().len();
        if samples >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(samples, want, "every request sampled");

    let request = CanaryEvalRequest::new(3600, per_intent, CandidateArm::Canary).unwrap();
    let started = Instant::now();
    let first = admin
        .evaluate_canary("prod", request.clone())
        .await
        .unwrap();
    let whole = started.elapsed();
    eprintln!("a whole canary evaluation of {want} samples: {whole:?}");
    assert_eq!(first.report.considered as usize, want);
    assert!(
        whole >= Duration::from_millis(400),
        "a whole evaluation takes {whole:?}: too short to stop in the middle"
    );

    let mut client = pb::canary_service_client::CanaryServiceClient::connect(server.url())
        .await
        .unwrap();
    let message = quire_proto::canary::evaluate_canary_request("prod", &request);
    let mut late = with_token(message, "t-releaser");
    late.set_timeout(whole / 4);
    let started = Instant::now();
    let status = client
        .evaluate_canary(late)
        .await
        .expect_err("past its deadline");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    tokio::time::sleep(
        (whole * 3 / 2 + Duration::from_millis(500)).saturating_sub(started.elapsed()),
    )
    .await;
    let reports: Vec<String> = admin
        .canary_reports("prod")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.report_id)
        .collect();
    assert_eq!(
        reports,
        vec![first.report.report_id.clone()],
        "only the first evaluation's report"
    );
    server.stop().await;
}
