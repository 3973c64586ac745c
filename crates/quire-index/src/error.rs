//! The error type of quire-index.

use std::path::PathBuf;

use thiserror::Error;

/// Errors from building, opening or verifying an index.
#[derive(Debug, Error)]
pub enum IndexError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// tantivy refused an operation.
    #[error("bm25 index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The embedding model failed or is unavailable.
    #[error(transparent)]
    Embed(#[from] quire_embed::EmbedError),
    /// A file of the artifact is not what its format says it must be.
    #[error("{file}: {reason}")]
    Corrupt {
        /// The file, relative to the index directory.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A build could not read its documents (the source's own error, boxed).
    #[error("{0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),
    /// The build inputs are inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// The build stopped because its [`crate::Progress`] asked (its deadline passed or its
    /// caller went away); nothing was published.
    #[error("the build was cancelled: its deadline passed or its caller went away")]
    Cancelled,
}

/// Shorthand for results in this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;

/// Attach a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| IndexError::Io {
            path: path.into(),
            source,
        })
    }
}
