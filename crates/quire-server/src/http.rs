//! The HTTP/JSON API (`[http] addr` in server.toml, or `quire serve --http-addr`): thin axum
//! adapters onto the same services, authentication, limits and error mapping as the gRPC
//! handlers. Each request runs through [`Server::handle`] (permit, bearer token and role,
//! deadline, metrics under the RPC's name); its JSON body is read up to `max_request_bytes`,
//! parsed by [`crate::http_json`] and validated by the gRPC messages' own conversions; an
//! error's HTTP status is derived from its gRPC code ([`http_status`]), and its JSON body names
//! the field at fault. The routes are [`ROUTES`], and `/v1/openapi.json` documents them.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use quire_proto::convert::RetrieveParams;
use serde::Serialize;
use tonic::Code;
use tonic::metadata::MetadataMap;

use crate::api::QuireApi;
use crate::auth::Role;
use crate::error::{Result, ServiceError};
use crate::grpc::{Grpc, Server, invalid_request};
use crate::http_json::{self as json, AliasChangeBody, ErrorBody, ErrorDetail};
use crate::release_api::ReleaseApi;

/// The OpenAPI 3 document of this API, served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// One route of the HTTP API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path, with `{name}` for a path parameter.
    pub path: &'static str,
    endpoint: Endpoint,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Health,
    OpenApi,
    Retrieve,
    Indexes,
    Alias,
    Set,
    Canary,
    Promote,
    Rollback,
}

const fn route(method: &'static str, path: &'static str, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        endpoint,
    }
}

/// Every route the router serves: it is built from this list and nothing else.
pub const ROUTES: [Route; 9] = [
    route("GET", "/v1/health", Endpoint::Health),
    route("GET", "/v1/openapi.json", Endpoint::OpenApi),
    route("POST", "/v1/retrieve", Endpoint::Retrieve),
    route("GET", "/v1/indexes", Endpoint::Indexes),
    route("GET", "/v1/aliases/{name}", Endpoint::Alias),
    route("POST", "/v1/aliases/{name}/set", Endpoint::Set),
    route("POST", "/v1/aliases/{name}/canary", Endpoint::Canary),
    route("POST", "/v1/aliases/{name}/promote", Endpoint::Promote),
    route("POST", "/v1/aliases/{name}/rollback", Endpoint::Rollback),
];

/// The HTTP status of a gRPC code (the mapping gRPC's HTTP gateways use), and the code's
/// name: an error's status derives from [`ServiceError::code`], the one mapping of errors.
pub fn http_status(code: Code) -> (StatusCode, &'static str) {
    match code {
        Code::Ok => (StatusCode::OK, "OK"),
        Code::Cancelled => (StatusCode::REQUEST_TIMEOUT, "CANCELLED"),
        Code::Unknown => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN"),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, "INVALID_ARGUMENT"),
        Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED"),
        Code::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
        Code::AlreadyExists => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
        Code::FailedPrecondition => (StatusCode::BAD_REQUEST, "FAILED_PRECONDITION"),
        Code::Aborted => (StatusCode::CONFLICT, "ABORTED"),
        Code::OutOfRange => (StatusCode::BAD_REQUEST, "OUT_OF_RANGE"),
        Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "UNIMPLEMENTED"),
        Code::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        Code::DataLoss => (StatusCode::INTERNAL_SERVER_ERROR, "DATA_LOSS"),
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
    }
}

fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let content_type = HeaderValue::from_static("application/json");
            (status, [(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        Err(e) => error_response(ServiceError::Internal(format!("encoding JSON: {e}"))),
    }
}

/// An error as the gRPC status it maps to (an internal error's details stay in the log), then
/// as HTTP: the status, and a JSON body with the code, the message and the field at fault.
fn error_response(e: ServiceError) -> Response {
    let status = tonic::Status::from(e);
    let (http, code) = http_status(status.code());
    let message = status.message().to_owned();
    let field = json::field_of(&message);
    let body = ErrorBody {
        error: ErrorDetail {
            code,
            message,
            field,
        },
    };
    json_response(http, &body)
}

fn reply(result: Result<impl Serialize>) -> Response {
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(e) => error_response(e),
    }
}

/// The router's state: the gRPC services' shared state, and whether the server follows a
/// shared registry (its health then depends on having every served index locally).
#[derive(Clone)]
struct Http {
    server: Arc<Server>,
    following: bool,
}

impl Http {
    /// Run `call` as [`Server::handle`] does for gRPC, with the request's headers as metadata.
    async fn handle<T, F, Fut>(
        &self,
        rpc: &'static str,
        needed: Role,
        headers: HeaderMap,
        call: F,
    ) -> Response
    where
        T: Serialize,
        F: FnOnce(Arc<Server>, crate::auth::Caller) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let metadata = MetadataMap::from_headers(headers);
        reply(
            self.server
                .clone()
                .handle(rpc, needed, &metadata, call)
                .await,
        )
    }
}

/// A request body of at most `limit` bytes, as `T`.
async fn read_json<T: serde::de::DeserializeOwned>(body: Body, limit: usize) -> Result<T> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_long = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        match too_long {
            true => ServiceError::ResourceExhausted(format!(
                "request body exceeds the limit of {limit} bytes"
            )),
            false => ServiceError::InvalidArgument(format!("reading the request body: {e}")),
        }
    })?;
    json::decode(&bytes)
}

/// The router of [`ROUTES`] over the services of `grpc`.
pub(crate) fn router(grpc: &Grpc, following: bool) -> Router {
    let state = Http {
        server: grpc.server().clone(),
        following,
    };
    let mut router = Router::new();
    for r in ROUTES {
        router = router.route(r.path, method_router(r.endpoint));
    }
    router.fallback(not_found).with_state(state)
}

fn method_router(endpoint: Endpoint) -> MethodRouter<Http> {
    match endpoint {
        Endpoint::Health => get(health),
        Endpoint::OpenApi => get(openapi),
        Endpoint::Retrieve => post(retrieve),
        Endpoint::Indexes => get(indexes),
        Endpoint::Alias => get(alias),
        Endpoint::Set => post(change::<json::SetAlias>),
        Endpoint::Canary => post(change::<json::SetCanary>),
        Endpoint::Promote => post(change::<json::Promote>),
        Endpoint::Rollback => post(change::<json::Rollback>),
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error_response(ServiceError::NotFound(format!(
        "no route {}; the API is described at /v1/openapi.json",
        uri.path()
    )))
}

async fn health(State(h): State<Http>) -> Response {
    let store = h.server.local.store().clone();
    let ready = !h.following
        || tokio::task::spawn_blocking(move || store.arms_local())
            .await
            .unwrap_or(false);
    let (status, text) = match ready {
        true => (StatusCode::OK, "SERVING"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING"),
    };
    json_response(status, &json::Health { status: text })
}

async fn openapi() -> Response {
    let content_type = HeaderValue::from_static("application/json");
    ([(header::CONTENT_TYPE, content_type)], OPENAPI).into_response()
}

async fn retrieve(State(h): State<Http>, headers: HeaderMap, body: Body) -> Response {
    h.handle("Retrieve", Role::Reader, headers, |s, caller| async move {
        let request: json::RetrieveRequest = read_json(body, s.limits.max_request_bytes).await?;
        let params = RetrieveParams::try_from(request).map_err(invalid_request)?;
        let explain = params.explain;
        let mut response = s.retrieve(&caller, params).await?;
        if !explain {
            for hit in &mut response.hits {
                (hit.bm25, hit.vector) = (None, None);
            }
        }
        Ok(response)
    })
    .await
}

async fn indexes(State(h): State<Http>, headers: HeaderMap) -> Response {
    h.handle("ListIndexes", Role::Reader, headers, |s, _| async move {
        let indexes = s.local.indexes().await?;
        Ok(json::Indexes { indexes })
    })
    .await
}

async fn alias(State(h): State<Http>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    h.handle("GetAlias", Role::Reader, headers, |s, _| async move {
        s.local.alias(&name).await
    })
    .await
}

async fn change<B: AliasChangeBody + Send + 'static>(
    State(h): State<Http>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    h.handle(
        "ChangeAlias",
        Role::Releaser,
        headers,
        |s, caller| async move {
            let body: B = read_json(body, s.limits.max_request_bytes).await?;
            let params = json::change_params(name, body).map_err(invalid_request)?;
            s.change_alias(&caller, params).await
        },
    )
    .await
}

/// Serve `router` on `listener` until `shutdown` resolves, then let in-flight requests finish.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // As for gRPC: Nagle's algorithm and delayed ACKs would hold small responses back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse and validate `body` as the route's handler does.
    fn accepted(endpoint: Endpoint, body: &[u8]) -> Result<()> {
        let alias = || "docs".to_owned();
        match endpoint {
            Endpoint::Retrieve => {
                let r: json::RetrieveRequest = json::decode(body)?;
                RetrieveParams::try_from(r).map_err(invalid_request)?;
            }
            Endpoint::Set => drop(json::change_params(
                alias(),
                json::decode::<json::SetAlias>(body)?,
            )),
            Endpoint::Canary => drop(json::change_params(
                alias(),
                json::decode::<json::SetCanary>(body)?,
            )),
            Endpoint::Promote => drop(json::change_params(
                alias(),
                json::decode::<json::Promote>(body)?,
            )),
            Endpoint::Rollback => drop(json::change_params(
                alias(),
                json::decode::<json::Rollback>(body)?,
            )),
            Endpoint::Health | Endpoint::OpenApi | Endpoint::Indexes | Endpoint::Alias => {
                return Err(ServiceError::InvalidArgument("takes no body".into()));
            }
        }
        Ok(())
    }

    #[test]
    fn every_post_route_has_an_example_body_its_handler_accepts() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("the document is JSON");
        for r in ROUTES {
            let op = &doc["paths"][r.path][r.method.to_lowercase()];
            assert!(op.is_object(), "{} {} is documented", r.method, r.path);
            let example = op.pointer("/requestBody/content/application~1json/example");
            match (r.method, example) {
                ("POST", Some(example)) => {
                    let body = serde_json::to_vec(example).expect("an example serialises");
                    let verdict = accepted(r.endpoint, &body).map_err(|e| e.to_string());
                    assert_eq!(verdict, Ok(()), "{} {}: {example}", r.method, r.path);
                }
                ("POST", None) => panic!("{} has no example body", r.path),
                (_, example) => assert!(example.is_none(), "{} takes no body", r.path),
            }
        }
    }

    #[test]
    fn every_grpc_code_has_an_http_status() {
        let codes = [
            (Code::InvalidArgument, 400),
            (Code::FailedPrecondition, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::ResourceExhausted, 429),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
        ];
        for (code, status) in codes {
            assert_eq!(http_status(code).0.as_u16(), status, "{code:?}");
        }
        // Every error the services raise maps through ServiceError::code.
        let internal = ServiceError::Internal("disk on fire".into());
        let response = error_response(internal);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    /// A request's future is dropped once its HTTP/1 client goes away, as gRPC's is when its
    /// stream is reset: that is what raises the cancel flag of the blocking work it started
    /// ([`crate::cancel`]). A handler that would take 10 s holds a guard; the client sends
    /// the request and closes its connection 200 ms later; the guard is dropped well before
    /// the handler could have finished.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_whose_http1_client_goes_away_is_dropped() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::{Duration, Instant};
        use tokio::io::AsyncWriteExt;

        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let (dropped, started) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (d, s) = (dropped.clone(), started.clone());
        let router = Router::new().route(
            "/slow",
            get(move || async move {
                let _flag = Flag(d);
                s.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(10)).await;
                "done"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, async {
            let _ = stopped.await;
        }));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /slow HTTP/1.1\r\nhost: quire\r\n\r\n")
            .await
            .unwrap();
        let sent = Instant::now();
        while !started.load(Ordering::SeqCst) {
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "the handler never started"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(client);
        let gone = Instant::now();
        while !dropped.load(Ordering::SeqCst) && gone.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            dropped.load(Ordering::SeqCst),
            "the handler still ran {:?} after its client went away",
            gone.elapsed()
        );
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
