//! The error type of quire-core.

use thiserror::Error;

/// Everything that can go wrong while validating quire's domain types.
#[derive(Debug, Error)]
pub enum CoreError {
    /// A document failed validation; `origin` names the file and line or path it came from.
    #[error("{origin}: {reason}")]
    InvalidDocument {
        /// Where the document came from, e.g. `corpus.jsonl:12`.
        origin: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A build spec could not be parsed at all.
    #[error("{origin}: {message}")]
    SpecSyntax {
        /// The spec file (or `<default>` / `<inline>`).
        origin: String,
        /// The parser's message, which names the line and key.
        message: String,
    },
    /// A build spec parsed but a field holds a value quire cannot use.
    #[error("{origin}: field `{field}` = {value}: {reason}")]
    SpecInvalid {
        /// The spec file.
        origin: String,
        /// Dotted path of the field, e.g. `hnsw.m`.
        field: String,
        /// The offending value as written.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A principal token was malformed.
    #[error("invalid principal {token:?}: {reason}")]
    InvalidPrincipal {
        /// The token as given.
        token: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A string is not a well-formed snapshot or index id.
    #[error(
        "invalid {kind} id {value:?}: expected `{prefix}` followed by 64 lowercase hex characters"
    )]
    InvalidId {
        /// `snapshot` or `index`.
        kind: &'static str,
        /// The expected prefix.
        prefix: &'static str,
        /// The value as given.
        value: String,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
