//! The error type of quire-eval.

use thiserror::Error;

/// A dataset file that cannot be read or parsed.
#[derive(Debug, Error)]
pub enum EvalError {
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line of a dataset file is malformed.
    #[error("{origin}: {reason}")]
    Malformed {
        /// `file:line`.
        origin: String,
        /// What is wrong.
        reason: String,
    },
}
