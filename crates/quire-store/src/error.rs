//! The error type of quire-store.

use std::path::PathBuf;

use thiserror::Error;

/// Errors from the data dir: imports, snapshots, builds and lookups.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Another process holds the data dir.
    #[error("data dir {path} is locked by another quire process (lock file {lock})")]
    Locked {
        /// The data dir.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// A reader was pointed at a directory that is not a data dir.
    #[error("{path} is not a quire data dir (nothing has been imported or built there)")]
    MissingDataDir {
        /// The path given.
        path: PathBuf,
    },
    /// A corpus was refused; nothing was stored.
    #[error("{origin}: {reason}")]
    Corpus {
        /// File and line, or path, of the offending input.
        origin: String,
        /// What was wrong.
        reason: String,
    },
    /// A domain rule was violated (bad spec, id or principal).
    #[error(transparent)]
    Core(#[from] quire_core::CoreError),
    /// Building, reading or verifying an index failed.
    #[error(transparent)]
    Index(#[from] quire_index::IndexError),
    /// The embedding model is unavailable or not the pinned one.
    #[error(transparent)]
    Embed(#[from] quire_embed::EmbedError),
    /// No snapshot or index with this id or prefix.
    #[error("no {kind} matches {id:?}")]
    NotFound {
        /// `snapshot` or `index`.
        kind: &'static str,
        /// The id or prefix asked for.
        id: String,
    },
    /// A prefix matches more than one index.
    #[error("{prefix:?} is ambiguous: it matches {candidates}")]
    Ambiguous {
        /// The prefix.
        prefix: String,
        /// The ids it matches.
        candidates: String,
    },
    /// A prefix is too short to be used.
    #[error("{prefix:?} is too short: give a full id or a prefix of at least {min} hex characters")]
    PrefixTooShort {
        /// The prefix.
        prefix: String,
        /// The minimum length.
        min: usize,
    },
    /// The registry database failed or holds something unexpected.
    #[error("registry {path}: {reason}")]
    Registry {
        /// The registry file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A registry backend other than the data dir's file (a database) failed or refused.
    #[error("registry {registry}: {reason}")]
    Backend {
        /// The registry, credentials left out (e.g. `postgres://quire@db:5432/quire`).
        registry: String,
        /// What went wrong.
        reason: String,
    },
    /// A mutation was attempted through a read-only store.
    #[error("{path} is open read-only; changes need the writer (the server, or no server running)")]
    ReadOnly {
        /// The registry file.
        path: PathBuf,
    },
    /// An alias change that does not apply.
    #[error("alias {alias:?} {reason}")]
    Release {
        /// The alias.
        alias: String,
        /// Why not.
        reason: String,
    },
    /// A promotion the alias's quality gate refuses.
    #[error("alias {alias:?} gate refuses: {reason}")]
    Gate {
        /// The alias.
        alias: String,
        /// Why.
        reason: String,
    },
    /// A bad argument to a release operation.
    #[error("{field}: {reason}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Deleting an index that is still live.
    #[error("{id} is live and cannot be deleted: {reasons}")]
    Live {
        /// The index.
        id: String,
        /// Why it is live.
        reasons: String,
    },
    /// A value that is hashed or stored could not be serialised; nothing was written.
    #[error("cannot serialise {what}: {reason}")]
    Encode {
        /// What was being serialised.
        what: &'static str,
        /// The serialiser's error.
        reason: String,
    },
    /// The shared artifact store failed or timed out (it may work when tried again).
    #[error("artifact store {store}: {key}: {reason}")]
    Artifact {
        /// The store, credentials left out (e.g. `s3://bucket/prefix`).
        store: String,
        /// The object involved (empty: the store as a whole).
        key: String,
        /// What went wrong.
        reason: String,
    },
    /// The shared artifact store holds an object that does not check (missing, other bytes, a
    /// manifest that does not describe the build asked for); nothing was kept.
    #[error("artifact store {store}: {key}: {reason}")]
    ArtifactRefused {
        /// The store, credentials left out.
        store: String,
        /// The object refused.
        key: String,
        /// What does not check.
        reason: String,
    },
    /// GC has marked the index for deletion across machines: it is not fetched, and no alias
    /// may start serving it.
    #[error("{id} is being deleted by GC (marked at {marked_at}); pin or rebuild it after GC")]
    MarkedForDeletion {
        /// The index.
        id: String,
        /// When GC marked it (RFC 3339).
        marked_at: String,
    },
    /// A stored artifact no longer matches its recorded hashes.
    #[error("{id} fails verification: {problems}")]
    Corrupt {
        /// The snapshot or index id.
        id: String,
        /// What differs.
        problems: String,
    },
}

impl From<quire_release::ReleaseError> for StoreError {
    fn from(e: quire_release::ReleaseError) -> Self {
        use quire_release::ReleaseError;
        match e {
            ReleaseError::Refused { alias, reason } => StoreError::Release { alias, reason },
            ReleaseError::NotFound { kind, id } => StoreError::NotFound { kind, id },
            ReleaseError::Invalid { field, reason } => StoreError::Invalid { field, reason },
            ReleaseError::Encode { what, source } => StoreError::Encode {
                what,
                reason: source.to_string(),
            },
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attach a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.into(),
            source,
        })
    }
}
