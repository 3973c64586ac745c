//! The error type of quire-embed.

use std::path::PathBuf;

use thiserror::Error;

/// Errors from resolving or running an embedding model.
#[derive(Debug, Error)]
pub enum EmbedError {
    /// The spec names a model this process does not have.
    #[error("embedding model `{model}` is not available (available: {available})")]
    UnknownModel {
        /// The requested model.
        model: String,
        /// The models that are.
        available: String,
    },
    /// The model exists but is not the one pinned by digest.
    #[error("embedding model `{model}` has digest {actual}, but {expected} was required")]
    DigestMismatch {
        /// The model name.
        model: String,
        /// The digest the caller pinned.
        expected: String,
        /// The digest of the model at hand.
        actual: String,
    },
    /// A model parameter is missing or unusable.
    #[error("embedding model `{model}`: {reason}")]
    BadParameter {
        /// The model name.
        model: String,
        /// What is wrong.
        reason: String,
    },
    /// A model directory could not be read or is not a model quire can run.
    #[error("embedding model `{model}` at {}: {reason}", path.display())]
    Load {
        /// The model name.
        model: String,
        /// Its directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Running the model failed.
    #[error("embedding model `{model}` failed: {reason}")]
    Run {
        /// The model name.
        model: String,
        /// What failed.
        reason: String,
    },
}
