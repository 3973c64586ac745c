//! Issue 14, item 1 over real gRPC on 127.0.0.1: an end user's identity from a signed JWT
//! (`x-quire-user-token`), for the tokens server.toml allows to present one, next to bound and
//! `run_as` tokens; every Retrieve's principal, token and mechanism in the access log file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use quire_index::Mode;
use quire_server::{QuireApi, ServerConfig};
use quire_testkit::paths::jwt_fixture;
use quire_testkit::server::{self as support, TestServer, query};
use serde_json::{Value, json};
use tonic::Code;

/// A JWT of `claims` signed with fixture key `key` for `alg`.
fn sign(key: &str, alg: Algorithm, claims: &Value) -> String {
    let pem = std::fs::read(jwt_fixture(&format!("{key}.key.pem"))).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .unwrap();
    jsonwebtoken::encode(&Header::new(alg), claims, &key).unwrap()
}

/// Erin of the executives, for an hour, from the trusted issuer to quire, edited by `edit`.
fn erin(edit: impl Fn(&mut Value)) -> Value {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let mut claims = json!({
        "iss": "https://idp.test", "aud": ["quire"], "sub": "erin",
        "groups": ["execs", "all-staff"], "iat": now, "exp": now + 3600,
    });
    edit(&mut claims);
    claims
}

/// What a request should get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Read as this (user, groups), by this mechanism.
    As(Option<&'static str>, &'static [&'static str], &'static str),
    /// Refused with this code, the message holding this.
    No(Code, &'static str),
}

/// The tokens of the test, in the matrix's column order: an application token that may
/// present a JWT (else its `run_as` scope applies), a reader and an admin that must, and a
/// token bound to dana, which may not present one.
const TOKENS: [&str; 4] = ["app-optional", "app-required", "admin-required", "bound"];

fn server_toml(access_log: &std::path::Path) -> String {
    let hash = |t: &str| support::token_hash(&format!("t-{t}"));
    let key = |name: &str| jwt_fixture(&format!("{name}.pub.pem"));
    format!(
        r#"version = 1
[jwt]
issuer = "https://idp.test"
audience = ["quire"]
keys = [{{ pem = {rs:?}, alg = "RS256" }}, {{ pem = {es:?}, alg = "ES256" }}, {{ pem = {ed:?}, alg = "EdDSA" }}]
[access_log]
path = {access_log:?}
max_file_mib = 1
max_files = 2
[[tokens]]
name = "app-optional"
role = "reader"
blake3 = "{h0}"
jwt = "optional"
run_as = {{ users = ["svc-*"], groups = ["all-staff"] }}
[[tokens]]
name = "app-required"
role = "reader"
blake3 = "{h1}"
jwt = "required"
[[tokens]]
name = "admin-required"
role = "admin"
blake3 = "{h2}"
jwt = "required"
[[tokens]]
name = "bound"
role = "reader"
blake3 = "{h3}"
principal = {{ user = "dana", groups = ["eng"] }}
"#,
        rs = key("rs256"),
        es = key("es256"),
        ed = key("eddsa"),
        h0 = hash(TOKENS[0]),
        h1 = hash(TOKENS[1]),
        h2 = hash(TOKENS[2]),
        h3 = hash(TOKENS[3]),
    )
}

/// The role x mechanism matrix: bound token, `run_as` inside and outside its scope, and a JWT
/// that is valid, narrowed, widened, expired, from the wrong issuer, for the wrong audience,
/// signed with an untrusted key, or missing where required. A JWT's user and groups are what
/// the request reads as (an execs document shows up for erin); a bad one is UNAUTHENTICATED
/// naming what is wrong; a token not allowed a JWT is PERMISSION_DENIED. The access log file
/// holds one JSON line per Retrieve with token, mechanism and effective principal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_user_jwts_set_the_principal_of_the_tokens_allowed_one() {
    let dir = tempfile::TempDir::new().unwrap();
    let log_path = dir.path().join("access.jsonl");
    let mut config = ServerConfig::from_toml(&server_toml(&log_path), "server.toml").unwrap();
    config.tokens.extend(support::role_tokens());
    let server = TestServer::start_config(config).await;
    // The reference: t-reader may assert anyone, so it shows what a principal can read.
    let reference = server.client(Some("t-reader")).await;
    let text = "board strategy policy review process access team leave incident";
    let reads_as = |user: Option<&str>, groups: &[&str]| {
        let mut q = query(text, groups, Mode::Bm25, 50);
        q.reader = quire_core::Reader::new(user, groups).unwrap();
        q
    };

    use Expect::{As, No};
    let unauth = |why| [No(Code::Unauthenticated, why); 3];
    let no_jwt_for_bound = No(Code::PermissionDenied, "may not present an end user's JWT");
    let erin_all = As(Some("erin"), &["execs", "all-staff"], "jwt");
    type Asserted = (Option<&'static str>, &'static [&'static str]);
    let rows: Vec<(&str, Option<String>, Asserted, [Expect; 4])> = vec![
        (
            "valid ES256",
            Some(sign("es256", Algorithm::ES256, &erin(|_| {}))),
            (None, &[]),
            [erin_all, erin_all, erin_all, no_jwt_for_bound],
        ),
        (
            "valid RS256, narrowed",
            Some(sign("rs256", Algorithm::RS256, &erin(|_| {}))),
            (None, &["all-staff"]),
            with_last([As(None, &["all-staff"], "jwt"); 3], no_jwt_for_bound),
        ),
        (
            "valid EdDSA, widened",
            Some(sign("eddsa", Algorithm::EdDSA, &erin(|_| {}))),
            (Some("erin"), &["execs", "hr"]),
            with_last(
                [No(Code::PermissionDenied, "may narrow but not widen"); 3],
                no_jwt_for_bound,
            ),
        ),
        (
            "expired",
            Some(sign(
                "es256",
                Algorithm::ES256,
                &erin(|c| c["exp"] = json!(1_000_000)),
            )),
            (None, &[]),
            with_last(unauth("has expired"), no_jwt_for_bound),
        ),
        (
            "wrong issuer",
            Some(sign(
                "es256",
                Algorithm::ES256,
                &erin(|c| c["iss"] = json!("https://evil.test")),
            )),
            (None, &[]),
            with_last(
                unauth("issuer this server does not trust"),
                no_jwt_for_bound,
            ),
        ),
        (
            "wrong audience",
            Some(sign(
                "es256",
                Algorithm::ES256,
                &erin(|c| c["aud"] = json!("billing")),
            )),
            (None, &[]),
            with_last(unauth("not meant for this server"), no_jwt_for_bound),
        ),
        (
            "untrusted key",
            Some(sign("other", Algorithm::ES256, &erin(|_| {}))),
            (None, &[]),
            with_last(
                unauth("does not verify with any trusted key"),
                no_jwt_for_bound,
            ),
        ),
        (
            "no JWT, run_as inside its scope",
            None,
            (Some("svc-search"), &["all-staff"]),
            [
                As(Some("svc-search"), &["all-staff"], "run_as"),
                No(Code::Unauthenticated, "must send the end user's JWT"),
                No(Code::Unauthenticated, "must send the end user's JWT"),
                No(Code::PermissionDenied, "may narrow but not widen"),
            ],
        ),
        (
            "no JWT, run_as outside its scope",
            None,
            (Some("mallory"), &["execs"]),
            [
                No(Code::PermissionDenied, "outside its run_as scope"),
                No(Code::Unauthenticated, "must send the end user's JWT"),
                No(Code::Unauthenticated, "must send the end user's JWT"),
                No(Code::PermissionDenied, "may narrow but not widen"),
            ],
        ),
        (
            "no JWT, nothing asserted",
            None,
            (None, &[]),
            [
                As(None, &[], "run_as"),
                No(Code::Unauthenticated, "must send the end user's JWT"),
                No(Code::Unauthenticated, "must send the end user's JWT"),
                As(Some("dana"), &["eng"], "bound"),
            ],
        ),
    ];
    let mut logged = Vec::new();
    for (label, jwt, (user, groups), expect) in &rows {
        for (token, expect) in TOKENS.iter().zip(expect) {
            let context = format!("{token}, {label}");
            let client = server
                .client(Some(&format!("t-{token}")))
                .await
                .with_user_token(jwt.clone());
            let answer = client
                .retrieve("handbook", reads_as(*user, groups), None)
                .await;
            match *expect {
                No(code, why) => {
                    let err = answer.expect_err(&context);
                    assert_eq!(support::code(&err), code, "{context}: {err}");
                    assert!(err.to_string().contains(why), "{context}: {err}");
                    assert!(!jwt.as_deref().is_some_and(|j| err.to_string().contains(j)));
                    logged.push((token.to_string(), None, None));
                }
                As(want_user, want_groups, mechanism) => {
                    let docs = |r: quire_index::Response| -> Vec<String> {
                        r.hits.into_iter().map(|h| h.doc_id).collect()
                    };
                    let got = docs(answer.expect(&context));
                    let want = docs(
                        reference
                            .retrieve("handbook", reads_as(want_user, want_groups), None)
                            .await
                            .unwrap(),
                    );
                    assert_eq!(got, want, "{context}");
                    if want_groups.contains(&"execs") {
                        assert!(
                            got.iter().any(|d| d.starts_with("execs/")),
                            "{context}: {got:?}"
                        );
                    }
                    let principal = quire_core::Reader::new(want_user, want_groups).unwrap();
                    let principal = principal
                        .named()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>();
                    let principal = if principal.is_empty() {
                        "*".into()
                    } else {
                        principal.join(",")
                    };
                    logged.push((
                        token.to_string(),
                        Some(mechanism.to_owned()),
                        Some(principal),
                    ));
                }
            }
        }
    }
    server.stop().await;

    // One line per Retrieve of the matrix's tokens (the reference's own lines aside), in order.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<(String, Option<String>, Option<String>)> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["token"] != "Reader")
        .map(|e| {
            assert_eq!(e["rpc"], "Retrieve", "{e}");
            assert_eq!(e["resource"], "handbook", "{e}");
            assert_eq!(e["allowed"], e["mechanism"].is_string(), "{e}");
            let text = |v: &Value| v.as_str().map(str::to_owned);
            (
                text(&e["token"]).unwrap(),
                text(&e["mechanism"]),
                text(&e["principal"]),
            )
        })
        .collect();
    assert_eq!(lines, logged);
}

/// Three expectations and a fourth.
fn with_last(first: [Expect; 3], last: Expect) -> [Expect; 4] {
    [first[0], first[1], first[2], last]
}

/// Refused JWTs are audited like refused tokens, at a bounded rate: 100 Retrieves with an
/// expired JWT through one token and 100 without the JWT another token must send leave one
/// `auth.jwt_refused` event per token while the server runs (saying why, never holding the
/// JWT), then one count of the other 99 each when it stops; the chain still verifies. (Before,
/// they went to the access log only.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_jwts_are_audited_at_a_bounded_rate() {
    use quire_server::ReleaseApi;
    let dir = tempfile::TempDir::new().unwrap();
    let mut config = ServerConfig::from_toml(
        &server_toml(&dir.path().join("access.jsonl")),
        "server.toml",
    )
    .unwrap();
    config.tokens.extend(support::role_tokens());
    let server = TestServer::start_config(config).await;
    let expired = sign(
        "es256",
        Algorithm::ES256,
        &erin(|c| c["exp"] = json!(1_000_000)),
    );
    let optional = server
        .client(Some("t-app-optional"))
        .await
        .with_user_token(Some(expired.clone()));
    let required = server.client(Some("t-app-required")).await;
    let q = query("parental leave", &[], Mode::Bm25, 5);
    for _ in 0..100 {
        let err = optional
            .retrieve("handbook", q.clone(), None)
            .await
            .unwrap_err();
        assert_eq!(support::code(&err), Code::Unauthenticated, "{err}");
        let err = required
            .retrieve("handbook", q.clone(), None)
            .await
            .unwrap_err();
        assert_eq!(support::code(&err), Code::Unauthenticated, "{err}");
    }
    let admin = server.client(Some("t-admin")).await;
    let refused = |log: &[quire_store::AuditEvent], actor: &str| -> Vec<Value> {
        log.iter()
            .filter(|e| e.actor == actor && e.action == "auth.jwt_refused")
            .map(|e| e.evidence.clone())
            .collect()
    };
    // The first refusal of each is written off the request's thread: wait for both.
    let mut log = Vec::new();
    for _ in 0..200 {
        log = admin.audit_log().await.unwrap();
        if !refused(&log, "app-optional").is_empty() && !refused(&log, "app-required").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let optional_events = refused(&log, "app-optional");
    assert_eq!(optional_events.len(), 1, "{optional_events:?}");
    assert!(
        optional_events[0]["message"]
            .as_str()
            .unwrap()
            .contains("has expired"),
        "{optional_events:?}"
    );
    let required_events = refused(&log, "app-required");
    assert_eq!(required_events.len(), 1, "{required_events:?}");
    assert!(
        required_events[0]["message"]
            .as_str()
            .unwrap()
            .contains("must send the end user's JWT"),
        "{required_events:?}"
    );
    assert!(
        !serde_json::to_string(&log).unwrap().contains(&expired),
        "a JWT must not be written to the audit log"
    );
    let dir = server.stop_keeping_data().await;
    let store =
        quire_store::Store::open(dir.path().join("data"), quire_store::Access::Read).unwrap();
    let log = store.audit_events().unwrap();
    for actor in ["app-optional", "app-required"] {
        let repeated: Vec<u64> = refused(&log, actor)
            .iter()
            .filter_map(|e| e["repeated"].as_u64())
            .collect();
        assert_eq!(repeated, [99], "{actor}");
    }
    assert!(store.audit_verify().unwrap().ok, "the chain still verifies");
}

/// A server reads its `[jwt] jwks` file again when the file changes: a JWT signed with a key
/// the set did not hold is refused, then, once a set holding that key is renamed into place,
/// accepted without a restart. (Before, the file was read at start only.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_jwks_file_is_used_without_a_restart() {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    let dir = tempfile::TempDir::new().unwrap();
    let jwks = dir.path().join("jwks.json");
    let publish = |names: &[(&str, Algorithm)]| {
        let keys = names
            .iter()
            .map(|(name, alg)| {
                let pem = std::fs::read(jwt_fixture(&format!("{name}.key.pem"))).unwrap();
                let key = match alg {
                    Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
                    _ => EncodingKey::from_ed_pem(&pem),
                }
                .unwrap();
                Jwk::from_encoding_key(&key, *alg).unwrap()
            })
            .collect();
        let tmp = jwks.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&JwkSet { keys }).unwrap()).unwrap();
        std::fs::rename(&tmp, &jwks).unwrap();
    };
    publish(&[("rs256", Algorithm::RS256)]);
    let toml = format!(
        "version = 1\n[jwt]\nissuer = \"https://idp.test\"\naudience = [\"quire\"]\njwks = {jwks:?}\n\
         [[tokens]]\nname = \"app\"\nrole = \"reader\"\nblake3 = \"{}\"\njwt = \"required\"\n",
        support::token_hash("t-app")
    );
    let server =
        TestServer::start_config(ServerConfig::from_toml(&toml, "server.toml").unwrap()).await;
    let rotated = sign("eddsa", Algorithm::EdDSA, &erin(|_| {}));
    let client = server
        .client(Some("t-app"))
        .await
        .with_user_token(Some(rotated));
    let q = query("board strategy", &[], Mode::Bm25, 50);
    let err = client
        .retrieve("handbook", q.clone(), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no trusted key is for EdDSA"),
        "{err}"
    );

    publish(&[("eddsa", Algorithm::EdDSA)]);
    let started = std::time::Instant::now();
    let answer = loop {
        match client.retrieve("handbook", q.clone(), None).await {
            Ok(answer) => break answer,
            Err(err) if started.elapsed() < std::time::Duration::from_secs(5) => {
                assert_eq!(support::code(&err), Code::Unauthenticated, "{err}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(err) => panic!("the rotated key is still refused after 5 s: {err}"),
        }
    };
    assert!(
        answer.hits.iter().any(|h| h.doc_id.starts_with("execs/")),
        "erin reads the executives' documents"
    );
    server.stop().await;
}
