//! The error type of quire-release.

use thiserror::Error;

/// Why a release operation does not apply. The store turns each into its own error of the same
/// wording, so callers see one message whichever crate decided.
#[derive(Debug, Error)]
pub enum ReleaseError {
    /// An alias change that does not apply to the alias's current state.
    #[error("alias {alias:?} {reason}")]
    Refused {
        /// The alias.
        alias: String,
        /// Why not.
        reason: String,
    },
    /// A change to an alias that does not exist.
    #[error("no {kind} matches {id:?}")]
    NotFound {
        /// What was looked for, e.g. `alias`.
        kind: &'static str,
        /// The name asked for.
        id: String,
    },
    /// A bad argument to a release operation.
    #[error("{field}: {reason}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A value that is hashed or stored could not be serialised.
    #[error("cannot serialise {what}: {source}")]
    Encode {
        /// What was being serialised.
        what: &'static str,
        /// The serialiser's error.
        source: serde_json::Error,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = ReleaseError> = std::result::Result<T, E>;
