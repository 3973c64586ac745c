//! Integration tests of quire-embed: one test binary for the crate.

mod minilm;
