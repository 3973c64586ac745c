//! Continuous evaluation end to end over real gRPC: sampled requests (stratified by intent,
//! never holding document text, query text only where configured), and a scheduled canary
//! evaluation that rolls back a canary worse on one intent, and feedback with the cost per
//! successful query per arm.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quire_index::Mode;
use quire_server::{CanaryApi, QuireApi, ReleaseApi, Remote, RequestMeta, ServerConfig};
use quire_store::{
    AliasChangeRequest, CanaryEvalRequest, Intent, SampleListing, SampleRecord, SampledQuery,
};
use quire_testkit::server::{TestServer, code, handbook, query, role_tokens};
use tonic::Code;

/// A server with a token per role and `toml` (server.toml without tokens).
async fn server_with(toml: &str) -> TestServer {
    let mut config = ServerConfig::from_toml(toml, "server.toml").unwrap();
    config.tokens = role_tokens();
    TestServer::start_config(config).await
}

/// One request through `alias` with `intent`.
async fn ask(client: &Remote, alias: &str, text: &str, groups: &[&str], intent: &str) -> String {
    let meta = RequestMeta {
        routing_key: None,
        intent: Some(Intent::new(intent).unwrap()),
    };
    let response = client
        .retrieve_with(alias, query(text, groups, Mode::Hybrid, 5), meta)
        .await
        .unwrap();
    response.request_id.expect("a request id")
}

/// The samples of `alias`, once `want` of them are written (the writer runs in the
/// background).
async fn samples_of(client: &Remote, alias: &str, want: usize) -> Vec<SampleRecord> {
    let listing = SampleListing::new(Some(alias.into()), None, None, 1000).unwrap();
    for _ in 0..200 {
        let samples = client.samples(listing.clone()).await.unwrap();
        if samples.len() >= want {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {want} samples of {alias} were written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampled_requests_are_capped_per_intent_and_hold_no_document_text() {
    let server = server_with(
        "version = 1\n[sampling]\nrate = 1.0\ncap_per_intent_per_hour = 3\n\
         [sampling.aliases.prod]\nstore_text = true\n",
    )
    .await;
    let admin = server.client(Some("t-admin")).await;
    let index = admin.index("handbook").await.unwrap().manifest.index_id;
    for alias in ["prod", "other"] {
        let set = AliasChangeRequest::Set(index.to_string());
        admin
            .change_alias(alias, set, "start", false)
            .await
            .unwrap();
    }
    let reader = server.client(Some("t-reader")).await;
    let staff = ["all-staff", "hr"];
    let mut ids = BTreeSet::new();
    for i in 0..6 {
        ids.insert(ask(&reader, "prod", "parental leave weeks", &staff, "hr").await);
        if i < 2 {
            ids.insert(ask(&reader, "prod", "incident severity", &["eng"], "eng").await);
        }
    }
    let hidden = ask(&reader, "other", "sick leave policy", &staff, "hr").await;
    assert_eq!(ids.len(), 8, "every response has its own request id");
    assert!(!ids.contains(&hidden));

    // Three of six "hr" requests (the hourly cap), both "eng" requests: a frequent intent does
    // not drown a rare one.
    let samples = samples_of(&admin, "prod", 5).await;
    let per_intent = |label: &str| samples.iter().filter(|s| s.intent_label() == label).count();
    assert_eq!((per_intent("hr"), per_intent("eng")), (3, 2), "{samples:?}");
    let hr = samples.iter().find(|s| s.intent_label() == "hr").unwrap();
    assert!(ids.contains(&hr.request_id));
    assert_eq!(hr.query, SampledQuery::Text("parental leave weeks".into()));
    assert_eq!((hr.arm.as_str(), hr.revision), ("primary", 1));
    assert_eq!(hr.groups, ["all-staff", "hr"]);
    assert!(!hr.doc_ids.is_empty() && hr.doc_ids.len() == hr.chunk_ids.len());

    // No document text in any record: the hits' texts are nowhere in them.
    let answer = reader
        .retrieve(
            "prod",
            query("parental leave weeks", &staff, Mode::Hybrid, 5),
            None,
        )
        .await
        .unwrap();
    let stored = serde_json::to_string(&samples).unwrap();
    for hit in &answer.hits {
        let line = hit.text.lines().find(|l| l.len() > 30).unwrap_or(&hit.text);
        assert!(
            !stored.contains(line),
            "document text in a sample: {line:?}"
        );
    }

    // Without store_text only the query's hash is kept.
    let other = samples_of(&admin, "other", 1).await;
    assert_eq!(other[0].request_id, hidden);
    assert!(matches!(&other[0].query, SampledQuery::Blake3(h) if h.len() == 64));
    assert!(
        !serde_json::to_string(&other)
            .unwrap()
            .contains("sick leave")
    );

    // Samples hold principals (and maybe text): readers may not list them; intents are checked.
    let listing = SampleListing::new(None, None, None, 10).unwrap();
    let err = reader.samples(listing).await.unwrap_err();
    assert_eq!(code(&err), Code::PermissionDenied, "{err}");
    let mut bad = quire_proto::convert::retrieve_request(
        "prod",
        &query("leave", &staff, Mode::Bm25, 3),
        false,
    );
    bad.intent = "no spaces".into();
    let mut raw =
        quire_proto::pb::retrieval_service_client::RetrievalServiceClient::connect(server.url())
            .await
            .unwrap();
    let mut request = tonic::Request::new(bad);
    request
        .metadata_mut()
        .insert("authorization", "Bearer t-reader".parse().unwrap());
    let status = raw.retrieve(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("field `intent`"), "{status:?}");
    server.stop().await;
}

/// `prod`'s outcome report once `want` feedback records are written (in the background).
async fn alias_report(client: &Remote, want: u64) -> quire_store::AliasReport {
    for _ in 0..200 {
        let report = client.alias_report("prod", 3600).await.unwrap();
        let overall: u64 = report
            .rows
            .iter()
            .filter(|r| r.intent == "overall")
            .map(|r| r.feedback)
            .sum();
        if overall >= want {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {want} feedback records were written");
}

/// Copy the directory tree `from` into `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The handbook with its HR documents readable only by a group nobody is in: built with the
/// demo's spec it answers every other intent exactly as the demo index does (ACLs are not in
/// the BM25 statistics, and the texts are the same), and HR questions badly.
fn handbook_without_hr(dir: &Path) -> PathBuf {
    let corpus = dir.join("handbook");
    copy_tree(&handbook(), &corpus);
    let acl = corpus.join("quire-acl.toml");
    let mut rules = std::fs::read_to_string(&acl).unwrap();
    rules.push_str("\n[[rules]]\npaths = [\"hr/**\"]\nacl = [\"group:hr-archive\"]\n");
    std::fs::write(acl, rules).unwrap();
    corpus
}

const HR: [&str; 4] = [
    "parental leave policy",
    "sick leave days",
    "grievance procedure",
    "compensation bands salary review",
];
const ENG: [&str; 4] = [
    "deploy process",
    "on-call rotation",
    "feature flags",
    "code review guidelines",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_evaluation_rolls_back_a_canary_worse_on_one_intent() {
    let server = server_with(
        "version = 1\n[release]\ncanary_eval_every = \"1s\"\n\
         [sampling]\nrate = 1.0\nstore_text = true\n[sampling.aliases.hashed]\nstore_text = false\n",
    )
    .await;
    let admin = server.client(Some("t-admin")).await;
    let old = admin.index("handbook").await.unwrap().manifest.index_id;
    let dir = tempfile::TempDir::new().unwrap();
    let snapshot = admin
        .import(&handbook_without_hr(dir.path()), None)
        .await
        .unwrap();
    let progress = std::sync::Arc::new(quire_index::NoProgress);
    let new = admin
        .build(snapshot.snapshot_id.as_str(), None, progress)
        .await
        .unwrap()
        .manifest
        .index_id;
    let releaser = server.client(Some("t-releaser")).await;
    let change = |c| releaser.change_alias("prod", c, "canary test", false);
    change(AliasChangeRequest::Set(old.to_string()))
        .await
        .unwrap();
    change(AliasChangeRequest::Canary(new.to_string(), 50.0))
        .await
        .unwrap();

    // Traffic through both arms, with intents; the policy comes after it, so the first
    // evaluation it sees has every sample.
    let app = server.client(Some("t-reader")).await;
    let mut arms = BTreeSet::new();
    let mut served = Vec::new();
    for i in 0..16 {
        let (texts, groups, intent) = if i % 2 == 0 {
            (&HR, ["all-staff", "hr"], "hr")
        } else {
            (&ENG, ["all-staff", "eng"], "eng")
        };
        let meta = RequestMeta {
            routing_key: Some(format!("user-{i}")),
            intent: Some(Intent::new(intent).unwrap()),
        };
        let q = query(texts[i / 2 % 4], &groups, Mode::Hybrid, 3);
        let r = app.retrieve_with("prod", q, meta).await.unwrap();
        assert!(r.cpu_us.total > 0 && r.cpu_us.bm25 > 0, "{:?}", r.cpu_us);
        arms.insert(r.lineage.arm);
        served.push((r.request_id.unwrap(), r.lineage.arm, intent));
    }
    assert_eq!(arms.len(), 2, "both arms served: {arms:?}");
    // The application's verdicts: HR answers from the canary fail.
    for (id, arm, intent) in &served {
        let success = !(intent == &"hr" && *arm == Some(quire_index::Arm::Canary));
        let receipt = app.feedback(id, success, None).await.unwrap();
        assert_eq!(
            (receipt.alias.as_str(), receipt.intent.unwrap().as_str()),
            ("prod", *intent)
        );
    }
    let (id, ..) = &served[0];
    let again = app.feedback(id, true, None).await.unwrap_err();
    assert_eq!(
        code(&again),
        Code::FailedPrecondition,
        "once per request: {again}"
    );
    let other = server.client(Some("t-builder")).await;
    let err = other.feedback(&served[1].0, true, None).await.unwrap_err();
    assert_eq!(code(&err), Code::PermissionDenied, "only the sender: {err}");
    let err = app
        .feedback(&format!("rq-{}", "0".repeat(32)), true, None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::NotFound, "{err}");
    let err = app.feedback("rq-x", true, None).await.unwrap_err();
    assert_eq!(code(&err), Code::InvalidArgument, "{err}");
    let report = alias_report(&app, 16).await;
    let row = |intent: &str, arm: &str| {
        report
            .rows
            .iter()
            .find(|r| r.intent == intent && r.arm == arm)
            .unwrap_or_else(|| panic!("no {intent} {arm} row in {report:?}"))
            .clone()
    };
    assert_eq!(row("hr", "canary").success_rate, 0.0);
    assert_eq!(row("hr", "primary").success_rate, 1.0);
    assert_eq!(row("eng", "canary").success_rate, 1.0);
    let primary = row("overall", "primary");
    assert!(primary.cpu_ms_per_success > 0.0, "{primary:?}");
    assert!(primary.latency_p99_us >= primary.latency_p50_us);
    samples_of(&admin, "prod", 16).await;
    let policy = "overlap<0.6,empty>+5%,samples>=5".parse().unwrap();
    change(AliasChangeRequest::AutoRollback(Some(policy)))
        .await
        .unwrap();

    // The scheduled evaluation crosses the policy on the HR intent and rolls the canary back.
    let mut current = admin.alias("prod").await.unwrap();
    for _ in 0..150 {
        if current.state.canary.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        current = admin.alias("prod").await.unwrap();
    }
    assert_eq!(current.action, "canary.auto-rollback", "{current:?}");
    assert_eq!(current.state.primary, old);
    assert!(
        current.reason.contains("intent hr: overlap"),
        "{}",
        current.reason
    );
    let log = admin.audit_log().await.unwrap();
    let rollback = log
        .iter()
        .find(|e| e.action == "alias.canary.auto-rollback")
        .expect("the rollback is audited");
    assert_eq!(rollback.actor, "quire-serve:canary-eval");
    let report_id = rollback.evidence["report"].as_str().unwrap().to_owned();
    assert!(
        log.iter()
            .any(|e| e.action == "canary.report" && e.after["report_id"] == report_id.as_str()),
        "the report itself is audited"
    );
    let reports = admin.canary_reports("prod").await.unwrap();
    let report = reports.iter().find(|r| r.report_id == report_id).unwrap();
    assert_eq!(
        (report.candidate.clone(), report.arm.as_str()),
        (new, "canary")
    );
    assert_eq!(report.overall.replayed, 16);
    let (hr, eng) = (&report.per_intent["hr"], &report.per_intent["eng"]);
    assert!(hr.jaccard < 0.6, "{hr:?}");
    assert_eq!((eng.replayed, eng.jaccard), (8, 1.0), "{eng:?}");
    assert_eq!(eng.candidate.empty_rate, 0.0);
    assert!(report.breaches.iter().any(|b| b.starts_with("intent hr: ")));
    assert!(!report.breaches.iter().any(|b| b.starts_with("intent eng")));

    // Without stored text there is nothing to replay, and the refusal says why.
    let hashed = |c| releaser.change_alias("hashed", c, "hash only", false);
    hashed(AliasChangeRequest::Set(old.to_string()))
        .await
        .unwrap();
    hashed(AliasChangeRequest::Shadow(report.candidate.to_string()))
        .await
        .unwrap();
    ask(&app, "hashed", "sick leave days", &["hr"], "hr").await;
    samples_of(&admin, "hashed", 1).await;
    let err = admin
        .evaluate_canary("hashed", CanaryEvalRequest::default())
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::FailedPrecondition, "{err}");
    assert!(err.to_string().contains("store_text = false"), "{err}");
    let err = releaser
        .evaluate_canary("handbook", CanaryEvalRequest::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has no canary or shadow"), "{err}");
    server.stop().await;
}
