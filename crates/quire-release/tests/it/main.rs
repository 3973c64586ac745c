//! Integration tests of quire-release: properties of alias changes, routing and the audit chain.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alias;
mod audit;
