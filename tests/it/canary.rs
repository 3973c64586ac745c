//! Continuous evaluation end to end over real gRPC: sampled requests (stratified by intent,
//! never holding document text, query text only where configured).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use quire_index::Mode;
use quire_server::{CanaryApi, QuireApi, ReleaseApi, Remote, RequestMeta, ServerConfig};
use quire_store::{AliasChangeRequest, Intent, SampleListing, SampleRecord, SampledQuery};
use quire_testkit::server::{TestServer, code, query, role_tokens};
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
