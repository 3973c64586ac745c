//! `[telemetry] otlp_endpoint`: `quire serve` exports its spans over OTLP/gRPC to a receiver
//! this test runs, continuing the trace a caller names in `traceparent`: the Retrieve's span,
//! its `retrieve` span with ids and counts, and the retrieval steps under it; never the text.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use quire_proto::pb;
use quire_testkit::otlp::OtlpReceiver;
use tempfile::TempDir;

use crate::common;
use crate::serve::{KillOnDrop, sigterm, start_server_with, wait_exit};

fn attributes(span: &Span) -> BTreeMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retrieve_continues_the_callers_trace_with_its_steps() {
    let receiver = OtlpReceiver::start().await;

    let dir = TempDir::new().unwrap();
    let config = dir.path().join("server.toml");
    // The README's `[telemetry]` snippet, pointed at this receiver.
    let readme = std::fs::read_to_string(common::workspace().join("README.md")).unwrap();
    let snippet = readme
        .split("\n## Tracing\n")
        .nth(1)
        .and_then(|s| s.split("```toml\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("README's Tracing section has a toml block");
    let ours = snippet.replace("http://127.0.0.1:4317", &receiver.endpoint());
    assert_ne!(ours, snippet, "the snippet names http://127.0.0.1:4317");
    let toml = format!("version = 1\n{ours}");
    std::fs::write(&config, toml).unwrap();
    let config = config.to_str().unwrap();
    let data = dir.path().join("data");
    // The first line is read on this worker; the other serves the receiver meanwhile.
    let (child, url) = start_server_with(&data, &[], &["--config", config]);
    let server = KillOnDrop(child);

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let text = "how long is parental leave";
    let mut client =
        pb::retrieval_service_client::RetrievalServiceClient::new(client_channel(&url).await);
    let mut request = tonic::Request::new(pb::RetrieveRequest {
        target: "handbook".into(),
        query: text.into(),
        principal: Some(pb::Principal {
            user: String::new(),
            groups: vec!["all-staff".into()],
        }),
        k: 3,
        ..Default::default()
    });
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    let answer = client.retrieve(request).await.unwrap().into_inner();
    assert!(!answer.hits.is_empty());

    // A build of the demo's snapshot with another spec, in a trace of its own.
    let snapshot = answer.lineage.unwrap().snapshot_id;
    let build_trace = "0af7651916cd43dd8448eb211c80319c";
    let mut indexes = pb::index_service_client::IndexServiceClient::new(client_channel(&url).await);
    let mut build = tonic::Request::new(pb::BuildIndexRequest {
        snapshot_id: snapshot,
        spec_toml: "version = 1\n[chunking]\nstrategy = \"sentences\"\nmax_tokens = 64\n".into(),
    });
    let parent = format!("00-{build_trace}-b7ad6b7169203331-01");
    build
        .metadata_mut()
        .insert("traceparent", parent.parse().unwrap());
    let mut events = indexes.build_index(build).await.unwrap().into_inner();
    let mut built = None;
    while let Some(event) = events.message().await.unwrap() {
        if let Some(pb::build_index_event::Event::Result(r)) = event.event {
            built = r.manifest.map(|m| m.index_id);
        }
    }
    let built = built.expect("the build finished");

    // With the new index shadowing the demo's, a Retrieve's trace holds the shadow query.
    let mut releases =
        pb::release_service_client::ReleaseServiceClient::new(client_channel(&url).await);
    let shadow = pb::ChangeAliasRequest {
        alias: "handbook".into(),
        reason: "trace the shadow".into(),
        change: Some(pb::change_alias_request::Change::Shadow(built)),
        force: false,
    };
    releases.change_alias(shadow).await.unwrap();
    let shadow_trace = "5b8efff798038103d269b633813fc60c";
    let mut shadowed = tonic::Request::new(pb::RetrieveRequest {
        target: "handbook".into(),
        query: text.into(),
        k: 3,
        ..Default::default()
    });
    let parent = format!("00-{shadow_trace}-eee19b7ec3c1b174-01");
    shadowed
        .metadata_mut()
        .insert("traceparent", parent.parse().unwrap());
    client.retrieve(shadowed).await.unwrap();
    // The shadow query runs after the answer: wait until the alias's report counts it.
    let report = pb::GetAliasRequest {
        alias: "handbook".into(),
    };
    let waited = std::time::Instant::now();
    while releases
        .shadow_report(report.clone())
        .await
        .unwrap()
        .into_inner()
        .compared
        == 0
    {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the shadow query never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let spans = stop_and_collect(server, receiver).await;
    let ours: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == trace_id)
        .collect();
    let names: Vec<&str> = ours.iter().map(|s| s.name.as_str()).collect();
    let find = |name: &str| {
        *ours
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name:?} span in the caller's trace: {names:?}"))
    };
    let rpc = find("rpc");
    assert_eq!(
        hex(&rpc.parent_span_id),
        caller_span,
        "the caller's span is the parent"
    );
    assert_eq!(
        attributes(rpc).get("rpc").map(String::as_str),
        Some("Retrieve")
    );
    let retrieve = find("retrieve");
    assert_eq!(retrieve.parent_span_id, rpc.span_id);
    let a = attributes(retrieve);
    assert_eq!(a.get("k").map(String::as_str), Some("3"), "{a:?}");
    assert_eq!(a.get("mode").map(String::as_str), Some("hybrid"), "{a:?}");
    assert_eq!(
        a.get("alias").map(String::as_str),
        Some("handbook"),
        "{a:?}"
    );
    assert_eq!(a.get("arm").map(String::as_str), Some("primary"), "{a:?}");
    assert_eq!(a.get("hits").map(String::as_str), Some("3"), "{a:?}");
    assert!(
        a.get("index").is_some_and(|i| i.starts_with("idx-")),
        "{a:?}"
    );
    // Each step is a descendant of the `retrieve` span.
    let parent_of: BTreeMap<&[u8], &[u8]> = ours
        .iter()
        .map(|s| (s.span_id.as_slice(), s.parent_span_id.as_slice()))
        .collect();
    for step in ["embed", "bm25", "vector", "fusion"] {
        let mut at = find(step).parent_span_id.as_slice();
        while at != retrieve.span_id.as_slice() {
            at = parent_of
                .get(at)
                .copied()
                .unwrap_or_else(|| panic!("{step} is not under `retrieve`: {names:?}"));
        }
    }
    // The build: its RPC span under the caller's, the build under it, and every stage under
    // the build.
    let built: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == build_trace)
        .collect();
    let names: Vec<&str> = built.iter().map(|s| s.name.as_str()).collect();
    let find = |name: &str| {
        *built
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name:?} span in the build's trace: {names:?}"))
    };
    let rpc = find("build");
    assert_eq!(hex(&rpc.parent_span_id), "b7ad6b7169203331");
    let build = find("build_index");
    assert!(
        attributes(build)
            .get("index")
            .is_some_and(|i| i.starts_with("idx-"))
    );
    assert!(
        attributes(build).get("chunks").is_some_and(|c| c != "0"),
        "{:?}",
        attributes(build)
    );
    for stage in ["chunk", "embed", "hnsw", "bm25", "write"] {
        assert_eq!(
            find(stage).parent_span_id,
            build.span_id,
            "{stage}: {names:?}"
        );
    }
    // The shadow query: under the Retrieve's `retrieve` span, in the caller's trace.
    let shadowed: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == shadow_trace)
        .collect();
    let retrieve = shadowed
        .iter()
        .find(|s| s.name == "retrieve")
        .expect("a retrieve span");
    let shadow = shadowed
        .iter()
        .find(|s| s.name == "shadow")
        .expect("a shadow span");
    assert_eq!(shadow.parent_span_id, retrieve.span_id);
    let a = attributes(shadow);
    assert_eq!(
        a.get("alias").map(String::as_str),
        Some("handbook"),
        "{a:?}"
    );
    assert!(a.contains_key("hits"), "{a:?}");
    for span in &spans {
        for (key, value) in attributes(span) {
            assert!(
                !value.contains("parental"),
                "{} {key} holds query text",
                span.name
            );
            // Left out on purpose: they cost a fifth of a traced request's export.
            assert!(
                !key.starts_with("code.") && !key.starts_with("thread."),
                "{} carries {key}",
                span.name
            );
        }
    }
}

/// Stop the server (which exports what its batch holds) and take every span received.
async fn stop_and_collect(mut server: KillOnDrop, receiver: OtlpReceiver) -> Vec<Span> {
    sigterm(&server.0);
    let status = tokio::task::spawn_blocking(move || {
        let status = wait_exit(&mut server.0, Duration::from_secs(30));
        drop(server);
        status
    });
    assert!(status.await.unwrap().success());
    receiver.spans()
}

/// A gRPC channel to `url`.
async fn client_channel(url: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// With `sample_ratio = 0`, only the request whose caller traces it (a sampled `traceparent`)
/// is exported: the others (no `traceparent`, or an unsampled one) leave no span at all, not
/// even a retrieval step as a trace of its own (builds are always traced).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_requests_the_sampler_picks_are_exported() {
    let receiver = OtlpReceiver::start().await;
    let dir = TempDir::new().unwrap();
    let config = dir.path().join("server.toml");
    let toml = format!(
        "version = 1\n[telemetry]\notlp_endpoint = \"{}\"\nsample_ratio = 0\n",
        receiver.endpoint()
    );
    std::fs::write(&config, toml).unwrap();
    let data = dir.path().join("data");
    let (child, url) = start_server_with(&data, &[], &["--config", config.to_str().unwrap()]);
    let server = KillOnDrop(child);

    let mut client =
        pb::retrieval_service_client::RetrievalServiceClient::new(client_channel(&url).await);
    let traced = "0af7651916cd43dd8448eb211c80319c";
    let parents = [
        None,
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".to_owned()),
        Some(format!("00-{traced}-b7ad6b7169203331-01")),
        None,
    ];
    for parent in &parents {
        let mut request = tonic::Request::new(pb::RetrieveRequest {
            target: "handbook".into(),
            query: "how long is parental leave".into(),
            principal: Some(pb::Principal {
                user: String::new(),
                groups: vec!["all-staff".into()],
            }),
            k: 3,
            ..Default::default()
        });
        if let Some(parent) = parent {
            request
                .metadata_mut()
                .insert("traceparent", parent.parse().unwrap());
        }
        client.retrieve(request).await.unwrap();
    }

    let spans = stop_and_collect(server, receiver).await;
    let names: Vec<(String, &str)> = spans
        .iter()
        .map(|s| (hex(&s.trace_id), s.name.as_str()))
        .collect();
    // The demo's build at start is the server's own work, traced as every build is.
    let builds: Vec<String> = spans
        .iter()
        .filter(|s| s.name == "build_index")
        .map(|s| hex(&s.trace_id))
        .collect();
    assert!(
        spans.iter().all(|s| {
            let id = hex(&s.trace_id);
            id == traced || builds.contains(&id)
        }),
        "spans of untraced requests were exported: {names:?}"
    );
    for step in ["rpc", "retrieve", "embed", "bm25", "vector", "fusion"] {
        assert!(
            spans.iter().any(|s| s.name == step),
            "the traced request lacks its {step:?} span: {names:?}"
        );
    }
}
