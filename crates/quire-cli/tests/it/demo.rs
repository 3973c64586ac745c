//! `quire serve --demo` and the model it serves: all-MiniLM-L6-v2 when `--models` holds it,
//! else hash-v1 with a hint how to fetch the model; `--http-addr`; `quire --version`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::common;
use crate::serve::{KillOnDrop, remote, sigterm, wait_exit};

/// `quire --data DATA --models MODELS serve --demo --addr :0 --http-addr :0`: the server, its
/// gRPC and HTTP URLs, and the file its stderr goes to.
fn start_demo(data: &Path, models: &Path, log: &Path) -> (KillOnDrop, String, String) {
    let mut child = Command::new(common::bin())
        .arg("--data")
        .arg(data)
        .arg("--models")
        .arg(models)
        .args(["serve", "--demo", "--addr", "127.0.0.1:0"])
        .args(["--http-addr", "127.0.0.1:0"])
        .env_remove("QUIRE_DATA")
        .env_remove("QUIRE_MODELS")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("spawn quire serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = |prefix: &str| {
        let line = lines.next().expect("a line").unwrap();
        line.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix:?}, got {line:?}"))
            .to_owned()
    };
    let grpc = next("quire listening on ");
    let http = next("quire HTTP API on ");
    (KillOnDrop(child), grpc, http)
}

/// The embedding model that answers a query through the demo alias.
fn served_model(url: &str) -> String {
    let args = [
        "--json",
        "query",
        "handbook",
        "parental leave",
        "--group",
        "all-staff",
    ];
    let run: common::Run = remote(url, &args).output().unwrap().into();
    let json = run.ok().json();
    assert!(!json["hits"].as_array().unwrap().is_empty(), "{json}");
    json["lineage"]["embedding_model"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `GET path` over a plain TCP connection: the status line and the body.
fn http_get(base: &str, path: &str) -> (String, String) {
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let status = reply.lines().next().unwrap_or_default().to_owned();
    let body = reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

fn stop(mut server: KillOnDrop) {
    sigterm(&server.0);
    let status = wait_exit(&mut server.0, Duration::from_secs(30));
    assert!(status.success(), "server exit: {status:?}");
}

#[test]
fn the_demo_serves_hash_v1_without_the_model_and_minilm_with_it() {
    let data = TempDir::new().unwrap();
    let empty = TempDir::new().unwrap();
    let log = data.path().join("serve.log");

    let (server, grpc, http) = start_demo(&data.path().join("d"), empty.path(), &log);
    assert_eq!(served_model(&grpc), "hash-v1");
    let (status, body) = http_get(&http, "/v1/health");
    assert!(status.contains("200"), "{status}: {body}");
    assert_eq!(body, r#"{"status":"SERVING"}"#);
    stop(server);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("served with the embedding model hash-v1")
            && said.contains("run scripts/fetch-model"),
        "{said}"
    );

    // The same data dir with the model at hand: the demo alias moves to the MiniLM build.
    let Some(_model) = quire_testkit::minilm() else {
        return;
    };
    let models = quire_testkit::paths::models_dir();
    let (server, grpc, _) = start_demo(&data.path().join("d"), &models, &log);
    assert_eq!(served_model(&grpc), "all-minilm-l6-v2");
    stop(server);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("served with the embedding model all-minilm-l6-v2")
            && !said.contains("fetch-model"),
        "{said}"
    );
}

#[test]
fn version_names_the_git_commit() {
    let run: common::Run = Command::new(common::bin())
        .arg("--version")
        .output()
        .unwrap()
        .into();
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(common::workspace())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".to_owned(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_owned()
        });
    let want = format!("quire {} (commit {commit})\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(run.ok().stdout, want);
}
