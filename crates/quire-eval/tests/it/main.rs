//! Integration tests of quire-eval: one test binary for the crate.

mod pytrec;
mod scifact;
