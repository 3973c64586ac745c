//! Test fixtures shared by quire's integration tests (a dev-dependency only; never published).
//!
//! - [`paths`]: the workspace, the bundled handbook, SciFact from `../shared/datasets`, the
//!   MiniLM model from `models/`, a Python with pytrec_eval, the Python client's venv, the test PostgreSQL
//!   ([`postgres`]) and the test S3 store ([`s3`]). A test that needs an absent dataset, model or service skips with a message,
//!   except with `CI=true`, where it fails: CI must not pass by skipping.
//! - [`proxy`]: a loopback TCP proxy a test can stall mid-transfer or shut, in front of the
//!   test S3 store.
//! - [`cli`]: the driver of the `quire` binary ([`cli::Run`], [`cli::tree`]).
//! - `pg` (feature `postgres`): a new, empty database on the test PostgreSQL per call.
//! - `replicas` (feature `replicas`): a builder and replica servers sharing the test
//!   PostgreSQL and S3 store, for the replica tests and `--bench replicas`.
//! - `otlp` (feature `otlp`): `OtlpReceiver`, an OTLP/gRPC trace receiver on a loopback port
//!   that keeps the spans it is sent.
//! - `server` (feature `server`): `TestServer`, a quire server on an ephemeral loopback port
//!   with one token per role, shut down by `TestServer::stop`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cli;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod paths;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod proxy;
#[cfg(feature = "replicas")]
pub mod replicas;
#[cfg(feature = "server")]
pub mod server;

pub use paths::{
    handbook, minilm, postgres, python_client_venv, pytrec_python, s3, scifact, workspace,
};
