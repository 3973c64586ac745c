//! Integration tests of quire-index: one test binary for the crate.

mod recall;
