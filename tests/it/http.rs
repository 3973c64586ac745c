//! The HTTP/JSON API over real HTTP on 127.0.0.1, beside gRPC on the same server: every route,
//! tokens and roles, bodies refused naming the field, the same hits as gRPC for the same
//! principal, the OpenAPI document against the router, and the README's curl snippet.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use quire_index::Mode;
use quire_server::http::{OPENAPI, ROUTES};
use quire_server::{
    Binding, Caller, Limits, QuireApi, ReleaseApi, Role, ServerConfig, ServiceError,
};
use quire_testkit::server as support;
use serde_json::{Value, json};
use support::{TestServer, query, role_tokens, token_hash};

/// A reply: status and JSON body.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    /// The error's code and field, when this is an error.
    fn error(&self) -> (&str, Option<&str>) {
        let e = &self.body["error"];
        (e["code"].as_str().unwrap_or(""), e["field"].as_str())
    }
}

async fn send(method: &str, url: String, token: Option<&str>, body: Option<String>) -> Reply {
    let client = reqwest::Client::new();
    let mut request = match method {
        "GET" => client.get(&url),
        "POST" => client.post(&url),
        other => panic!("method {other}"),
    };
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("an HTTP answer");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text:?}"));
    Reply { status, body }
}

async fn get(server: &TestServer, path: &str, token: Option<&str>) -> Reply {
    send("GET", format!("{}{path}", server.http_url()), token, None).await
}

async fn post(server: &TestServer, path: &str, token: Option<&str>, body: Value) -> Reply {
    let url = format!("{}{path}", server.http_url());
    send("POST", url, token, Some(body.to_string())).await
}

fn retrieve_body(text: &str, principal: Value, k: u32) -> Value {
    json!({"target": "handbook", "query": text, "principal": principal, "k": k, "mode": "hybrid"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_served_and_documented() {
    let server = TestServer::start(Limits::default()).await;
    let served = get(&server, "/v1/openapi.json", None).await;
    assert_eq!(served.status, 200);
    let document: Value = serde_json::from_str(OPENAPI).unwrap();
    assert_eq!(
        served.body, document,
        "the served document is the checked-in one"
    );
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().unwrap().keys();
            methods.map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(
        documented, routes,
        "every route documented, and nothing else"
    );

    // Each route answers (not the router's fallback), an admin sending the document's example.
    for r in ROUTES {
        let path = r.path.replace("{name}", "handbook");
        let op = &document["paths"][r.path][r.method.to_lowercase()];
        let example = op.pointer("/requestBody/content/application~1json/example");
        let body = example.map(Value::to_string);
        let url = format!("{}{path}", server.http_url());
        let reply = send(r.method, url, Some("t-admin"), body).await;
        let message = reply.body["error"]["message"].as_str().unwrap_or("");
        assert!(
            !message.contains("no route"),
            "{} {path}: {reply:?}",
            r.method
        );
        assert!(
            op["responses"][reply.status.to_string()].is_object(),
            "{} {path}: status {} is not documented: {reply:?}",
            r.method,
            reply.status
        );
        if let Some(example) = example {
            // The example is accepted: whatever follows, no field of it is refused.
            assert_ne!(reply.error().0, "INVALID_ARGUMENT", "{example}: {reply:?}");
        }
    }
    let health = get(&server, "/v1/health", None).await;
    assert_eq!(
        (health.status, &health.body),
        (200, &json!({"status": "SERVING"}))
    );
    let lost = get(&server, "/v1/nothing", Some("t-admin")).await;
    assert_eq!((lost.status, lost.error().0), (404, "NOT_FOUND"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_roles_are_those_of_grpc() {
    let server = TestServer::start(Limits::default()).await;
    let body = retrieve_body("parental leave", json!({"groups": ["all-staff"]}), 3);
    for token in [None, Some("t-nobody")] {
        let r = post(&server, "/v1/retrieve", token, body.clone()).await;
        assert_eq!(
            (r.status, r.error().0),
            (401, "UNAUTHENTICATED"),
            "{token:?}"
        );
        let r = get(&server, "/v1/indexes", token).await;
        assert_eq!(r.status, 401, "{token:?}: {r:?}");
    }
    let reader = Some("t-reader");
    let r = post(&server, "/v1/retrieve", reader, body.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!r.body["hits"].as_array().unwrap().is_empty());
    assert_eq!(r.body["lineage"]["alias"], "handbook");
    let indexes = get(&server, "/v1/indexes", reader).await;
    assert_eq!(indexes.status, 200);
    let listed = indexes.body["indexes"].as_array().unwrap();
    assert_eq!(listed[0]["index_id"], r.body["lineage"]["index_id"]);
    let alias = get(&server, "/v1/aliases/handbook", reader).await;
    assert_eq!(alias.status, 200);
    assert_eq!(alias.body["primary"], r.body["lineage"]["index_id"]);
    let missing = get(&server, "/v1/aliases/nope", reader).await;
    assert_eq!((missing.status, missing.error().0), (404, "NOT_FOUND"));

    // Alias changes need a releaser; forcing past a gate needs an admin.
    let id = alias.body["primary"].as_str().unwrap().to_owned();
    let set = json!({"index": id, "reason": "http test"});
    for token in ["t-reader", "t-builder"] {
        let r = post(&server, "/v1/aliases/docs/set", Some(token), set.clone()).await;
        assert_eq!(
            (r.status, r.error().0),
            (403, "PERMISSION_DENIED"),
            "{token}"
        );
    }
    let forced = json!({"index": id, "reason": "http test", "force": true});
    let r = post(&server, "/v1/aliases/docs/set", Some("t-releaser"), forced).await;
    assert_eq!((r.status, r.error().0), (403, "PERMISSION_DENIED"), "{r:?}");
    let r = post(&server, "/v1/aliases/docs/set", Some("t-releaser"), set).await;
    assert_eq!((r.status, &r.body["revision"]), (200, &json!(1)), "{r:?}");
    assert_eq!(r.body["actor"], "Releaser", "recorded as the token's name");
    server.stop().await;
}

/// A second handbook index beside the demo's, with sentence chunking.
const SENTENCES: &str =
    "version = 1\ndefault_acl = [\"*\"]\n[chunking]\nstrategy = \"sentences\"\nmax_tokens = 64\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_changes_over_http_are_the_release_service_s() {
    let server = TestServer::start(Limits::default()).await;
    let (admin, old, new) = support::two_indexes(&server, SENTENCES).await;
    let releaser = Some("t-releaser");
    let steps = [
        ("set", json!({"index": old, "reason": "first"}), 1, &old),
        (
            "canary",
            json!({"index": new, "percent": 10, "reason": "try"}),
            2,
            &old,
        ),
        ("promote", json!({"reason": "healthy"}), 3, &new),
        ("rollback", json!({"reason": "tickets up"}), 4, &old),
        (
            "rollback",
            json!({"reason": "again", "to_revision": 3}),
            5,
            &new,
        ),
    ];
    for (change, body, revision, primary) in steps {
        let path = format!("/v1/aliases/docs/{change}");
        let r = post(&server, &path, releaser, body).await;
        assert_eq!(r.status, 200, "{change}: {r:?}");
        assert_eq!(r.body["revision"], revision, "{change}: {r:?}");
        assert_eq!(
            r.body["primary"].as_str(),
            Some(primary.as_str()),
            "{change}"
        );
        assert_eq!(r.body["action"], change, "{r:?}");
    }
    let over_http = get(&server, "/v1/aliases/docs", Some("t-reader")).await;
    let over_grpc = admin.alias("docs").await.unwrap();
    let expected = serde_json::to_value(&over_grpc).unwrap();
    assert_eq!(over_http.body, expected, "the same revision both ways");
    let bad = json!({"index": new, "percent": 150, "reason": "too much"});
    let r = post(&server, "/v1/aliases/docs/canary", releaser, bad).await;
    assert_eq!((r.status, r.error().0), (400, "INVALID_ARGUMENT"), "{r:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_naming_the_field() {
    let limits = Limits {
        max_request_bytes: 4096,
        ..Limits::default()
    };
    let server = TestServer::start(limits).await;
    let reader = Some("t-reader");
    let raw = |body: &str| {
        let url = format!("{}/v1/retrieve", server.http_url());
        send("POST", url, reader, Some(body.to_owned()))
    };
    let cases = [
        (
            r#"{"target":"handbook","query":"leave","k":5000}"#,
            "k",
            "exceeds 1000",
        ),
        (
            r#"{"target":"handbook","query":"leave","k":500}"#,
            "k",
            "server's limit of 100",
        ),
        (
            r#"{"target":"handbook","query":"leave","k":0}"#,
            "k",
            "at least 1",
        ),
        (
            r#"{"target":"handbook","query":"leave","k":"ten"}"#,
            "k",
            "invalid type",
        ),
        (
            r#"{"target":"handbook","query":"leave","top_k":3}"#,
            "top_k",
            "unknown field",
        ),
        (r#"{"target":"handbook"}"#, "query", "missing field"),
        (
            r#"{"target":"handbook","query":"leave","mode":"fast"}"#,
            "mode",
            "unknown variant",
        ),
        (
            r#"{"target":"handbook","query":"leave","principal":{"groups":"eng"}}"#,
            "principal.groups",
            "invalid type",
        ),
    ];
    for (body, field, says) in cases {
        let r = raw(body).await;
        assert_eq!(r.status, 400, "{body}: {r:?}");
        assert_eq!(
            r.error(),
            ("INVALID_ARGUMENT", Some(field)),
            "{body}: {r:?}"
        );
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    let r = raw("{not json").await;
    assert_eq!(
        (r.status, r.error()),
        (400, ("INVALID_ARGUMENT", None)),
        "{r:?}"
    );
    let long = format!(r#"{{"target":"handbook","query":"{}"}}"#, "x".repeat(5000));
    let r = raw(&long).await;
    assert_eq!(
        (r.status, r.error().0),
        (429, "RESOURCE_EXHAUSTED"),
        "{r:?}"
    );
    let r = post(
        &server,
        "/v1/aliases/docs/promote",
        Some("t-admin"),
        json!({}),
    )
    .await;
    assert_eq!(r.error(), ("INVALID_ARGUMENT", Some("reason")), "{r:?}");
    let r = post(
        &server,
        "/v1/aliases/docs/promote",
        Some("t-admin"),
        json!({"reason": " "}),
    )
    .await;
    assert_eq!(r.error(), ("INVALID_ARGUMENT", Some("reason")), "{r:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_are_enforced_as_over_grpc() {
    let mut tokens = role_tokens();
    let dana = quire_core::Reader::new(Some("dana"), ["eng", "all-staff"]).unwrap();
    tokens.insert(
        token_hash("t-dana"),
        Caller::new("dana-laptop", Role::Reader, Binding::Bound(dana)),
    );
    let server = TestServer::start_config(ServerConfig {
        tokens,
        ..ServerConfig::default()
    })
    .await;
    let cases: [(&str, Option<&str>, &[&str]); 6] = [
        ("t-reader", None, &["all-staff"]),
        ("t-reader", None, &["execs"]),
        ("t-reader", Some("dana"), &["eng", "all-staff"]),
        ("t-reader", None, &[]),
        ("t-dana", None, &[]),
        ("t-dana", Some("dana"), &["eng"]),
    ];
    let mut differing = BTreeSet::new();
    for text in [
        "Project Heron price",
        "incident severity matrix",
        "parental leave",
    ] {
        for (token, user, groups) in cases {
            let principal = json!({"user": user, "groups": groups});
            let body = retrieve_body(text, principal, 10);
            let http = post(&server, "/v1/retrieve", Some(token), body).await;
            assert_eq!(http.status, 200, "{token} {groups:?}: {http:?}");
            let grpc = server.client(Some(token)).await;
            let mut q = query(text, groups, Mode::Hybrid, 10);
            q.reader = quire_core::Reader::new(user, groups).unwrap();
            let answer = grpc.retrieve("handbook", q, None).await.unwrap();
            let over_grpc: Vec<(String, f64)> = answer
                .hits
                .iter()
                .map(|h| (h.chunk_id.clone(), h.score))
                .collect();
            let over_http: Vec<(String, f64)> = http.body["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h["chunk_id"].as_str().unwrap().to_owned(),
                        h["score"].as_f64().unwrap(),
                    )
                })
                .collect();
            // serde_json parses floats to within an ulp (no `float_roundtrip`): same chunks,
            // same scores to 1e-12.
            let chunks =
                |hits: &[(String, f64)]| hits.iter().map(|h| h.0.clone()).collect::<Vec<_>>();
            assert_eq!(
                chunks(&over_http),
                chunks(&over_grpc),
                "{text} as {token} {groups:?}"
            );
            for ((_, a), (_, b)) in over_http.iter().zip(&over_grpc) {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    "{text}: {a} vs {b}"
                );
            }
            differing.insert(over_http.into_iter().map(|(c, _)| c).collect::<Vec<_>>());
        }
    }
    assert!(
        differing.len() > 3,
        "the principals see different documents"
    );

    // A bound token may not widen its principal: refused alike, with the same message.
    let wider = json!({"user": "dana", "groups": ["execs"]});
    let http = post(
        &server,
        "/v1/retrieve",
        Some("t-dana"),
        retrieve_body("price", wider, 3),
    )
    .await;
    assert_eq!(
        (http.status, http.error().0),
        (403, "PERMISSION_DENIED"),
        "{http:?}"
    );
    let grpc = server.client(Some("t-dana")).await;
    let mut q = query("price", &["execs"], Mode::Hybrid, 3);
    q.reader = quire_core::Reader::new(Some("dana"), ["execs"]).unwrap();
    let refused = grpc.retrieve("handbook", q, None).await.expect_err("wider");
    assert!(
        matches!(refused, ServiceError::PermissionDenied(_)),
        "{refused}"
    );
    assert_eq!(
        http.body["error"]["message"].as_str(),
        Some(refused.to_string().as_str())
    );
    server.stop().await;
}

/// The README's "HTTP API" snippet, run by `sh` with curl against a test server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_curl_snippet_runs() {
    let readme = std::fs::read_to_string(quire_testkit::workspace().join("README.md")).unwrap();
    let section = readme
        .split("\n## HTTP API\n")
        .nth(1)
        .expect("README has an `## HTTP API` section");
    let snippet = section
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a sh block in the HTTP API section");
    assert!(snippet.contains("curl"), "{snippet}");
    let has_curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok();
    if !has_curl {
        assert!(!quire_testkit::paths::in_ci(), "CI=true: curl is missing");
        eprintln!("skipping: curl is missing");
        return;
    }
    let server = TestServer::start(Limits::default()).await;
    // The snippet sets QUIRE_HTTP for the README's own server; point it at this one.
    let script = snippet.replace(
        "export QUIRE_HTTP=http://127.0.0.1:8080",
        &format!("export QUIRE_HTTP={}", server.http_url()),
    );
    assert_ne!(
        script, snippet,
        "the snippet exports QUIRE_HTTP=http://127.0.0.1:8080"
    );
    let run = move || {
        std::process::Command::new("sh")
            .args(["-euc", &script])
            .env("QUIRE_TOKEN", "t-reader")
            .output()
    };
    let out = tokio::task::spawn_blocking(run).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replies: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(replies[0], json!({"status": "SERVING"}), "{stdout}");
    let hits = replies[1]["hits"].as_array().expect("retrieve's answer");
    assert!(!hits.is_empty(), "{stdout}");
    assert_eq!(replies[1]["lineage"]["alias"], "handbook");
    assert_eq!(replies[2]["alias"], "handbook", "{stdout}");
    assert_eq!(replies.len(), 3, "{stdout}");
    server.stop().await;
}
