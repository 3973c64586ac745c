//! Integration tests of the `quire` binary: one test binary for the crate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod build;
mod common;
mod demo;
mod eval;
mod import;
mod models;
mod python_client;
mod registry;
mod serve;
mod store;
mod traces;
