//! Integration tests of quire-store: one test binary for the crate.

mod artifacts;
mod golden;
mod release;
mod reproducible;
mod retrieval;
