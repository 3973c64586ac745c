//! The bodies of quire's fuzz harnesses, as plain functions of the fuzzer's bytes.
//!
//! Each harness feeds untrusted input through one of quire's parsers the way quire itself does,
//! and panics only on a bug: a parser panicking or aborting, an error of the wrong kind (an
//! internal error where the input is at fault), or an accepted value that does not survive its
//! own canonical form. The afl binaries in `fuzz/` (outside the workspace, built by
//! `scripts/fuzz`) call these functions; this crate's tests replay every committed corpus entry
//! and every finding through them, so a fixed finding stays fixed without a fuzzer.
//!
//! - [`corpus_jsonl`], [`corpus_beir`]: a corpus file read as quire JSONL or BEIR.
//! - [`corpus_dir`]: a directory corpus with its `quire-acl.toml` (see [`dir_input`]).
//! - [`spec`]: a build spec (TOML) into a checked [`quire_core::BuildSpec`].
//! - [`server_config`]: `server.toml` into a checked [`quire_server::ServerConfig`].
//! - [`proto`]: a protobuf message decoded with prost and validated by its `TryFrom`.

mod corpus;
mod proto;

pub use corpus::{SCRATCH_ENV, corpus_beir, corpus_dir, corpus_jsonl, dir_input};
pub use proto::{MESSAGES, proto};

/// A harness: the fuzzer's bytes in, a panic only on a bug.
pub type Harness = fn(&[u8]);

/// Every harness by name, as the fuzz script and the replay tests name them.
pub const HARNESSES: [(&str, Harness); 6] = [
    ("corpus_jsonl", corpus_jsonl),
    ("corpus_beir", corpus_beir),
    ("corpus_dir", corpus_dir),
    ("spec", spec),
    ("server_config", server_config),
    ("proto", proto),
];

/// The largest document the corpus harnesses accept: small, so the size limit is reachable.
pub const MAX_DOCUMENT_BYTES: u64 = 4096;

/// A build spec as `quire build --spec` reads it. An accepted spec must survive its canonical
/// JSON (the form hashed into the index id and stored in the manifest): read back, it is the
/// same spec with the same bytes.
pub fn spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = quire_core::BuildSpec::from_toml(text, "spec.toml") else {
        return;
    };
    let canonical = spec.canonical_json();
    let back = quire_core::BuildSpec::from_canonical_json(&canonical).unwrap_or_else(|e| {
        panic!(
            "an accepted spec's canonical JSON is refused: {e}\n{}",
            String::from_utf8_lossy(&canonical)
        )
    });
    assert_eq!(
        back.canonical_json(),
        canonical,
        "an accepted spec's canonical JSON changes when read back"
    );
}

/// `server.toml` as `quire serve --config` reads it; refusals must be invalid-argument errors
/// (the operator's to fix), never internal ones.
pub fn server_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = quire_server::ServerConfig::from_toml(text, "server.toml") {
        assert!(
            matches!(e, quire_server::ServiceError::InvalidArgument(_)),
            "a bad server.toml is refused as something other than an invalid argument: {e:?}"
        );
    }
}
