//! quire's services, independent of transport, and the gRPC server that exposes them.
//!
//! - [`QuireApi`]: everything a client can ask of quire. [`Local`] implements it over a data
//!   dir in-process; [`Remote`] over gRPC. The CLI is written against the trait, so local and
//!   remote modes share every line of logic.
//! - [`ReleaseApi`]: aliases, shadow reports, pins, GC and the audit log, with the same two
//!   implementations. [`Local`] routes alias targets, runs shadow queries in the background and
//!   records every change with its actor ([`Local::as_actor`]: the caller's token name).
//! - [`Grpc`]: thin tonic adapters onto [`Local`] that authenticate ([`Auth`], bearer tokens
//!   hashed with blake3, roles reader < builder < releaser < admin), resolve the principal a
//!   query reads as from the token's [`Binding`] (logged on [`ACCESS_LOG`]), enforce
//!   [`Limits`] and [`ImportRoots`], convert with `quire_proto::convert`, and record
//!   [`Metrics`].
//! - [`CanaryApi`]: continuous evaluation: sampled production queries ([`sampler`]).
//! - [`ServiceError`]: the one error type, with the one exhaustive mapping to gRPC codes.
//! - [`http`]: the HTTP/JSON API, thin axum adapters onto the same state as [`Grpc`] (auth,
//!   limits, error mapping), its JSON shapes in [`http_json`].
//! - [`telemetry`]: log lines and OTLP trace export ([`telemetry::install`]), the caller's
//!   trace context continued.
//! - [`serve`]: the server's lifecycle: demo index, health, reflection, metrics endpoint,
//!   graceful shutdown on SIGINT or SIGTERM.

mod access_log;
mod api;
mod auth;
mod build_progress;
mod canary_api;
mod canary_eval;
mod cancel;
mod config;
mod denials;
mod error;
mod eval_api;
mod follow_metrics;
mod grpc;
mod grpc_canary;
mod grpc_eval;
mod grpc_release;
pub mod http;
pub mod http_json;
mod identity;
mod jwks;
mod jwt;
mod metrics;
pub mod observe;
pub mod outcomes;
mod release_api;
mod remote;
mod remote_canary;
mod remote_eval;
mod remote_release;
mod replica;
mod request_id;
pub mod sampler;
pub mod serve;
pub mod shadow;
pub mod telemetry;

pub use access_log::{AccessEntry, AccessLog, AccessLogConfig};
pub use api::{
    Local, QuireApi, RequestMeta, SHADOW_SLOTS, SharedProgress, UploadSink, local_actor, parse_spec,
};
pub use auth::{Auth, Caller, Role};
pub use canary_api::CanaryApi;
pub use config::{
    CanaryEvalSchedule, ImportRoots, Limits, ModelEntry, RegistryConfig, ServerConfig,
    StorageConfig, Tls,
};
pub use error::{Result, ServiceError};
pub use eval_api::{EvalApi, EvalRequest, GateRequest};
pub use grpc::{ACCESS_LOG, Grpc};
pub use identity::{Binding, Mechanism, RunAs};
pub use jwt::{JwtUse, JwtVerifier, MAX_USER_TOKEN_BYTES, USER_TOKEN_HEADER};
pub use metrics::Metrics;
pub use release_api::{AuditPage, DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE, ReleaseApi};
pub use remote::Remote;
pub use replica::ReplicaConfig;
