//! The error type of quire-store-s3: configuring a store. Errors of the store's operations are
//! quire-store's (`StoreError::Artifact`), naming the store and the object.

use thiserror::Error;

/// A store that cannot be configured.
#[derive(Debug, Error)]
pub enum S3Error {
    /// The store's URL is not `s3://bucket[/prefix]` (the reason never repeats a secret).
    #[error("storage url: {reason}")]
    Url {
        /// What is wrong with it.
        reason: String,
    },
    /// A setting other than the URL is refused.
    #[error("storage {field}: {reason}")]
    Setting {
        /// The setting (e.g. `endpoint`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The credentials are not in the environment.
    #[error("storage credentials: {reason}")]
    Credentials {
        /// What is missing.
        reason: String,
    },
    /// The client could not be built.
    #[error("storage {store}: {reason}")]
    Client {
        /// The store (`s3://bucket/prefix`).
        store: String,
        /// What went wrong.
        reason: String,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = S3Error> = std::result::Result<T, E>;
