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
    // A server that may read server paths under /dev.
    let server = TestServer::start_with_roots(&[std::path::Path::new("/dev")]).await;
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

/// Import `path` from the server's filesystem as the builder.
async fn import_server_path(server: &TestServer, path: &str) -> Result<u64, tonic::Status> {
    let header = pb::ImportHeader {
        format: pb::CorpusFormat::Unspecified as i32,
        file_name: String::new(),
        server_path: path.into(),
    };
    raw_import(server, "t-builder", header, vec![])
        .await
        .map(|s| s.documents)
}

/// Finding 2: `server_path` reads only under the configured `[import] roots` (none by default:
/// uploads only), checked after resolving symlinks and `..`, and every refusal has the same code
/// and message (the path aside), whether the path exists or not: no existence oracle. The same
/// holds for an evaluation's dataset directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_paths_are_confined_to_import_roots_without_an_existence_oracle() {
    let dir = tempfile::TempDir::new().unwrap();
    let root = dir.path().join("corpora");
    let private = dir.path().join("private");
    std::fs::create_dir_all(root.join("tree")).unwrap();
    std::fs::create_dir_all(&private).unwrap();
    let doc = "{\"id\":\"a\",\"text\":\"alpha\",\"acl\":[\"*\"]}\n";
    std::fs::write(root.join("ok.jsonl"), doc).unwrap();
    std::fs::write(root.join("tree/a.md"), "# A\nalpha").unwrap();
    let secret = private.join("secret.jsonl");
    std::fs::write(
        &secret,
        "{\"id\":\"s\",\"text\":\"the secret\",\"acl\":[\"*\"]}\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&secret, root.join("link.jsonl")).unwrap();
    std::os::unix::fs::symlink(&private, root.join("private-dir")).unwrap();
    let s = |p: std::path::PathBuf| p.to_string_lossy().into_owned();

    /// Every refusal: PERMISSION_DENIED, one message with the path cut out.
    fn shape(status: &tonic::Status, path: &str) -> (String, String) {
        (
            format!("{:?}", status.code()),
            status.message().replace(path, "<path>"),
        )
    }

    // By default no server path is read, whatever it names.
    let server = TestServer::start(Limits::default()).await;
    let mut shapes = std::collections::BTreeSet::new();
    for path in [
        s(secret.clone()),
        s(root.join("ok.jsonl")),
        s(private.join("missing.jsonl")),
        "/etc/hostname".into(),
        "/dev/zero".into(),
        "relative.jsonl".into(),
    ] {
        let status = import_server_path(&server, &path)
            .await
            .expect_err("no roots: uploads only");
        shapes.insert(shape(&status, &path));
    }
    assert_eq!(shapes.len(), 1, "{shapes:?}");
    let (code, message) = shapes.into_iter().next().unwrap();
    assert_eq!(code, "PermissionDenied", "{message}");
    assert!(
        message.contains("<path>") && message.contains("[import] roots"),
        "{message}"
    );
    server.stop().await;

    // With a root: what lies under it (after canonicalisation) is read; nothing else is, and
    // every refusal looks the same whether the path exists or not.
    // (Configured as server.toml says it, to check the file's `[import]` table too.)
    let toml = format!("version = 1\n[import]\nroots = [{:?}]\n", root);
    let mut config = quire_server::ServerConfig::from_toml(&toml, "server.toml").unwrap();
    config.tokens = support::role_tokens();
    let server = TestServer::start_config(config).await;
    assert_eq!(
        import_server_path(&server, &s(root.join("ok.jsonl")))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        import_server_path(&server, &s(root.join("tree")))
            .await
            .unwrap(),
        1
    );
    let mut shapes = std::collections::BTreeSet::new();
    for path in [
        s(secret.clone()),
        s(private.join("missing.jsonl")),
        s(root.join("../private/secret.jsonl")),
        s(root.join("link.jsonl")),
        s(root.join("private-dir/secret.jsonl")),
        s(root.join("missing.jsonl")),
        s(dir.path().to_path_buf()),
        "/etc/hostname".into(),
        "corpora/ok.jsonl".into(),
    ] {
        let status = import_server_path(&server, &path)
            .await
            .expect_err("outside the root");
        shapes.insert(shape(&status, &path));
    }
    assert_eq!(shapes.len(), 1, "{shapes:?}");
    assert_eq!(shapes.iter().next().unwrap().0, "PermissionDenied");

    // An evaluation's dataset is a server path too.
    let mut eval = pb::eval_service_client::EvalServiceClient::connect(server.url())
        .await
        .unwrap();
    for dataset in [s(private.clone()), s(dir.path().join("nope"))] {
        let mut request = tonic::Request::new(pb::EvaluateRequest {
            target: "handbook".into(),
            dataset: dataset.clone(),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("authorization", "Bearer t-builder".parse().unwrap());
        let status = eval.evaluate(request).await.expect_err("outside the root");
        assert_eq!(
            shape(&status, &dataset),
            shapes.iter().next().unwrap().clone(),
            "{}",
            status.message()
        );
    }
    server.stop().await;
}

/// The access log's events (tracing target [`quire_server::ACCESS_LOG`]), captured for the whole
/// test binary: each event's fields as text.
mod access_log {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, Once};

    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;

    pub type Event = BTreeMap<String, String>;

    static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());

    struct Capture;

    struct Fields(Event);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().into(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().into(), value.into());
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            if event.metadata().target() == quire_server::ACCESS_LOG {
                let mut fields = Fields(Event::new());
                event.record(&mut fields);
                EVENTS.lock().unwrap().push(fields.0);
            }
        }
    }

    /// Start capturing (once per test binary).
    pub fn capture() {
        static START: Once = Once::new();
        START.call_once(|| {
            tracing_subscriber::registry().with(Capture).init();
        });
    }

    /// The newest event of token `name`.
    pub fn last_of(name: &str) -> Option<Event> {
        EVENTS
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e.get("token").map(String::as_str) == Some(name))
            .cloned()
    }
}

/// The user and groups a request asserts.
type Asserted = (Option<&'static str>, &'static [&'static str]);

/// What a request should read as.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Allowed, reading as this principal (user, groups).
    As(Option<&'static str>, &'static [&'static str]),
    /// The token's own name as its user.
    Own,
    Denied,
}

/// Finding 1: the principal comes from the token, never from the request alone. A role x
/// mechanism matrix over gRPC: tokens bound to a principal (a request may narrow it, never
/// widen it), application tokens with a `run_as` scope (inside: allowed; outside: refused) and
/// tokens with neither (their own name only), for a reader and an admin role alike. Every
/// Retrieve's effective principal, token and mechanism go to the access log, refusals too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_come_from_the_token_role_by_mechanism() {
    use quire_index::Mode;
    use quire_server::{Binding, Caller, QuireApi, Role, RunAs, ServerConfig};
    access_log::capture();

    let dana = quire_core::Reader::new(Some("dana"), ["eng", "all-staff"]).unwrap();
    let scope = RunAs::new(
        vec!["dana".into(), "svc-*".into()],
        vec!["eng".into(), "all-staff".into()],
    )
    .unwrap();
    let mechanisms = [
        ("bound", Binding::Bound(dana)),
        ("run_as", Binding::RunAs(scope)),
        ("unbound", Binding::Unbound),
    ];
    let mut tokens = support::role_tokens();
    let mut matrix = Vec::new();
    for role in [Role::Reader, Role::Admin] {
        for (mechanism, binding) in &mechanisms {
            let name = format!("{role:?}-{mechanism}").to_lowercase();
            let token = format!("t-{name}");
            tokens.insert(
                support::token_hash(&token),
                Caller::new(name.clone(), role, binding.clone()),
            );
            matrix.push((name, token, *mechanism));
        }
    }
    let server = TestServer::start_config(ServerConfig {
        tokens,
        ..ServerConfig::default()
    })
    .await;
    // The reference: t-reader may assert anyone, so it shows what a principal can read.
    let reference = server.client(Some("t-reader")).await;
    let text = "policy review process access team leave incident";
    let docs = |r: quire_index::Response| -> Vec<String> {
        r.hits.into_iter().map(|h| h.doc_id).collect()
    };
    let reads_as = |user: Option<&str>, groups: &[&str]| {
        let mut q = query(text, groups, Mode::Bm25, 50);
        q.reader = quire_core::Reader::new(user, groups).unwrap();
        q
    };

    use Expect::{As, Denied, Own};
    // (asserted user, asserted groups) -> expectation for bound, run_as, unbound.
    let cases: [(Asserted, [Expect; 3]); 8] = [
        (
            (None, &[]),
            [As(Some("dana"), &["eng", "all-staff"]), As(None, &[]), Own],
        ),
        (
            (Some("dana"), &["eng", "all-staff"]),
            [
                As(Some("dana"), &["eng", "all-staff"]),
                As(Some("dana"), &["eng", "all-staff"]),
                Denied,
            ],
        ),
        (
            (None, &["eng"]),
            [As(None, &["eng"]), As(None, &["eng"]), Denied],
        ),
        ((None, &["execs"]), [Denied, Denied, Denied]),
        ((Some("dana"), &["eng", "execs"]), [Denied, Denied, Denied]),
        (
            (Some("svc-search"), &["all-staff"]),
            [Denied, As(Some("svc-search"), &["all-staff"]), Denied],
        ),
        ((Some("mallory"), &[]), [Denied, Denied, Denied]),
        ((Some("OWN"), &[]), [Denied, Denied, Own]),
    ];
    for (name, token, mechanism) in &matrix {
        let client = server.client(Some(token)).await;
        let column = match *mechanism {
            "bound" => 0,
            "run_as" => 1,
            _ => 2,
        };
        for ((user, groups), expect) in &cases {
            let user = user.map(|u| if u == "OWN" { name.as_str() } else { u });
            let answer = client
                .retrieve("handbook", reads_as(user, groups), None)
                .await;
            let event = access_log::last_of(name).expect("an access log event");
            let context = format!("{name} asserting {user:?} {groups:?}: {event:?}");
            assert_eq!(event["rpc"], "Retrieve", "{context}");
            assert_eq!(event["resource"], "handbook", "{context}");
            let (want_user, want_groups) = match expect[column] {
                Denied => {
                    let err = answer.expect_err(&context);
                    assert_eq!(support::code(&err), Code::PermissionDenied, "{context}");
                    assert!(err.to_string().contains(name.as_str()), "{err}");
                    assert_eq!(event["allowed"], "false", "{context}");
                    continue;
                }
                As(u, g) => (u, g.to_vec()),
                Own => (Some(name.as_str()), vec![]),
            };
            let got = docs(answer.expect(&context));
            let want = docs(
                reference
                    .retrieve("handbook", reads_as(want_user, &want_groups), None)
                    .await
                    .unwrap(),
            );
            assert_eq!(got, want, "{context}");
            assert_eq!(event["allowed"], "true", "{context}");
            assert_eq!(event["mechanism"], mechanism_name(mechanism), "{context}");
            let mut principal: Vec<String> =
                want_user.map(|u| format!("user:{u}")).into_iter().collect();
            let mut groups: Vec<String> =
                want_groups.iter().map(|g| format!("group:{g}")).collect();
            groups.sort();
            principal.extend(groups);
            let principal = if principal.is_empty() {
                "*".to_owned()
            } else {
                principal.join(",")
            };
            assert_eq!(event["principal"], principal, "{context}");
        }
    }
    server.stop().await;
}

/// The access log's name of a mechanism.
fn mechanism_name(mechanism: &str) -> &'static str {
    match mechanism {
        "bound" => "bound",
        "run_as" => "run_as",
        _ => "token",
    }
}

/// Finding 1 as reported: a reader token of a plain server.toml (no binding) asserted
/// `group:execs` and read the executives' documents. Now it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_reader_token_cannot_assert_groups() {
    use quire_server::QuireApi;
    let toml = format!(
        "version = 1\n[[tokens]]\nname = \"rag-app\"\nrole = \"reader\"\nblake3 = \"{}\"\n",
        blake3::hash(b"plain-reader").to_hex()
    );
    let config = quire_server::ServerConfig::from_toml(&toml, "server.toml").unwrap();
    let server = TestServer::start_config(config).await;
    let reader = server.client(Some("plain-reader")).await;
    let answer = reader
        .retrieve(
            "handbook",
            query(
                "Project Heron proposed price $184 million",
                &["execs"],
                quire_index::Mode::Bm25,
                5,
            ),
            None,
        )
        .await;
    let leaked = answer
        .as_ref()
        .map(|r| r.hits.iter().any(|h| h.text.contains("$184 million")))
        .unwrap_or(false);
    assert!(
        !leaked,
        "a plain reader token read the executives' documents"
    );
    let err = answer.expect_err("asserting a group needs a binding or run_as");
    assert_eq!(support::code(&err), Code::PermissionDenied, "{err}");
    server.stop().await;
}

/// Issue 14 (item 7): a request's megabyte-long value is not echoed back whole: every message
/// the server sends is short, and the value is named by its start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_inputs_are_cut_short_in_error_messages() {
    let server = TestServer::start(Limits::default()).await;
    let long = "x".repeat(1 << 20);
    let mut client = pb::retrieval_service_client::RetrievalServiceClient::connect(server.url())
        .await
        .unwrap();
    for request in [
        pb::RetrieveRequest {
            target: long.clone(),
            query: "leave".into(),
            ..Default::default()
        },
        pb::RetrieveRequest {
            target: format!("idx-{}", "0".repeat(1 << 20)),
            query: "leave".into(),
            ..Default::default()
        },
        pb::RetrieveRequest {
            target: "handbook".into(),
            query: "leave".into(),
            principal: Some(pb::Principal {
                user: format!("{long} "),
                groups: vec![],
            }),
            ..Default::default()
        },
    ] {
        let mut request = tonic::Request::new(request);
        request
            .metadata_mut()
            .insert("authorization", "Bearer t-reader".parse().unwrap());
        let status = client.retrieve(request).await.expect_err("refused");
        assert_ne!(
            status.code(),
            Code::Internal,
            "{}",
            &status.message()[..200]
        );
        assert!(
            status.message().len() <= 1024,
            "a {} byte message: {}...",
            status.message().len(),
            &status.message()[..200]
        );
        let start: String = status.message().chars().take(300).collect();
        assert!(
            status.message().contains("xxxx") || status.message().contains("0000"),
            "{start}"
        );
    }
    // A principal's size is capped where the request is converted.
    let mut request = tonic::Request::new(pb::RetrieveRequest {
        target: "handbook".into(),
        query: "leave".into(),
        principal: Some(pb::Principal {
            user: String::new(),
            groups: (0..2000).map(|i| format!("g{i}")).collect(),
        }),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer t-reader".parse().unwrap());
    let status = client.retrieve(request).await.expect_err("too many groups");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("field `principal`: 2000 groups exceed the limit of 1024"),
        "{}",
        status.message()
    );
    still_serving(&server).await;
    server.stop().await;
}

/// Issue 14 (item 7): a server with tokens refuses plaintext gRPC on a non-loopback address
/// (bearer tokens would cross the network in the clear) unless TLS is configured or
/// `allow_plaintext = true` says a proxy terminates TLS; the unauthenticated metrics endpoint
/// binds loopback only unless `allow_remote_metrics = true`.
#[test]
fn plaintext_and_metrics_stay_on_loopback_unless_allowed() {
    use quire_server::ServerConfig;
    use quire_server::serve::{check_exposure, check_metrics_exposure};
    let tokens = ServerConfig {
        tokens: support::role_tokens(),
        ..ServerConfig::default()
    };
    let outside = "0.0.0.0:1".parse().unwrap();
    let loopback = "127.0.0.1:1".parse().unwrap();
    let err = check_exposure(outside, &tokens)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("refusing to serve 0.0.0.0:1 in plaintext"),
        "{err}"
    );
    assert!(check_exposure(loopback, &tokens).is_ok());
    let tls = ServerConfig {
        tls: Some(quire_server::Tls {
            cert: "cert.pem".into(),
            key: "key.pem".into(),
        }),
        ..tokens.clone()
    };
    assert!(check_exposure(outside, &tls).is_ok());
    let hash = support::token_hash("t");
    let allowed = ServerConfig::from_toml(
        &format!(
            "version = 1\nallow_plaintext = true\nallow_remote_metrics = true\n[[tokens]]\nname = \"a\"\nrole = \"reader\"\nblake3 = \"{hash}\"\n"
        ),
        "server.toml",
    )
    .unwrap();
    assert!(check_exposure(outside, &allowed).is_ok());

    let err = check_metrics_exposure(outside, &tokens)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("refusing to serve metrics on 0.0.0.0:1"),
        "{err}"
    );
    assert!(check_metrics_exposure(loopback, &tokens).is_ok());
    assert!(check_metrics_exposure(outside, &allowed).is_ok());
}

/// A reader looping on calls it may not make, and a caller with a token the server does not
/// know, write a bounded number of audit events: the first refusal of each kind at once, then one
/// count per window (recorded at the latest when the server stops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_audited_at_a_bounded_rate() {
    use quire_server::ReleaseApi;
    let server = TestServer::start(Limits::default()).await;
    let reader = server.client(Some("t-reader")).await;
    let stranger = server.client(Some("not-a-token")).await;
    for i in 0..200 {
        let err = reader.gc(false, &format!("try {i}")).await.unwrap_err();
        assert_eq!(support::code(&err), Code::PermissionDenied);
        let err = stranger.gc(false, "x").await.unwrap_err();
        assert_eq!(support::code(&err), Code::Unauthenticated);
    }
    let admin = server.client(Some("t-admin")).await;
    let count = |log: &[quire_store::AuditEvent], actor: &str, action: &str| {
        log.iter()
            .filter(|e| e.actor == actor && e.action == action)
            .count()
    };
    let log = admin.audit_log().await.unwrap();
    assert_eq!(count(&log, "Reader", "auth.denied"), 1, "{log:?}");
    assert_eq!(count(&log, "<unknown token>", "auth.unauthenticated"), 1);
    assert!(
        !serde_json::to_string(&log).unwrap().contains("not-a-token"),
        "an unknown token must not be written to the audit log"
    );
    let dir = server.stop_keeping_data().await;
    let store =
        quire_store::Store::open(dir.path().join("data"), quire_store::Access::Read).unwrap();
    let log = store.audit_events().unwrap();
    let repeated = |actor: &str, action: &str| -> Vec<u64> {
        log.iter()
            .filter(|e| e.actor == actor && e.action == action)
            .filter_map(|e| e.evidence["repeated"].as_u64())
            .collect()
    };
    assert_eq!(repeated("Reader", "auth.denied"), [199]);
    assert_eq!(repeated("<unknown token>", "auth.unauthenticated"), [199]);
    assert!(store.audit_verify().unwrap().ok, "the chain still verifies");
}

/// `ListEvents` answers a page at a time: a client reads the whole log in pages of its choice,
/// and a page larger than the server allows is refused naming the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_read_in_pages() {
    use quire_server::{MAX_AUDIT_PAGE, QuireApi, ReleaseApi};
    let server = TestServer::start(Limits::default()).await;
    let admin = server.client(Some("t-admin")).await;
    let index = admin.index("handbook").await.unwrap().manifest.index_id;
    for i in 0..4 {
        let holder = format!("eval-{i}");
        let target = index.to_string();
        admin.pin(&target, &holder, None, "paging").await.unwrap();
    }
    let all = admin.audit_log().await.unwrap();
    assert!(all.len() >= 7, "{all:?}");
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = admin.audit_page(after, 2).await.unwrap();
        assert!(page.events.len() <= 2);
        paged.extend(page.events);
        match page.next_after {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(paged, all);
    let err = admin.audit_page(0, MAX_AUDIT_PAGE + 1).await.unwrap_err();
    assert_eq!(support::code(&err), Code::InvalidArgument);
    assert!(err.to_string().contains("10000"), "{err}");
    server.stop().await;
}
