//! The error type of quire-registry-pg.

use thiserror::Error;

/// Errors from the PostgreSQL registry. Every message names the registry without its
/// credentials (see [`crate::PgUrl`]).
#[derive(Debug, Error)]
pub enum PgError {
    /// The registry URL does not parse; the URL itself is not repeated (it may hold a password).
    #[error("registry url: {reason}")]
    Url {
        /// What is wrong with it.
        reason: String,
    },
    /// The registry's own tokio runtime could not start.
    #[error("registry {registry}: cannot start its runtime: {reason}")]
    Runtime {
        /// The registry.
        registry: String,
        /// The error.
        reason: String,
    },
    /// No connection could be had (refused, timed out, authentication failed).
    #[error("registry {registry}: cannot connect: {reason}")]
    Connect {
        /// The registry.
        registry: String,
        /// The error.
        reason: String,
    },
    /// A statement failed.
    #[error("registry {registry}: {what}: {reason}")]
    Query {
        /// The registry.
        registry: String,
        /// What was being done.
        what: &'static str,
        /// The database's error.
        reason: String,
    },
    /// The database's schema is not the one this quire needs.
    #[error("registry {registry}: {reason}")]
    Schema {
        /// The registry.
        registry: String,
        /// What is wrong and what to do.
        reason: String,
    },
}

impl From<PgError> for quire_store::StoreError {
    fn from(e: PgError) -> Self {
        let reason = e.to_string();
        let registry = match e {
            PgError::Url { .. } => "url".to_owned(),
            PgError::Runtime { registry, .. }
            | PgError::Connect { registry, .. }
            | PgError::Query { registry, .. }
            | PgError::Schema { registry, .. } => registry,
        };
        // The message already names the registry; keep only what follows it.
        let prefix = format!("registry {registry}: ");
        let reason = reason.strip_prefix(&prefix).unwrap_or(&reason).to_owned();
        quire_store::StoreError::Backend { registry, reason }
    }
}

/// A tokio-postgres error as one line: the server's message (and detail) when it sent one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// How often a read is retried on another connection when the pooled one turns out to be dead
/// (closed by the server, a restart, a network cut).
pub(crate) const RETRIES: usize = 2;

/// Whether `e` says the connection is gone (so a read may run again on another one).
pub(crate) fn lost(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.is_closed()
        || e.code().is_some_and(|c| {
            c == &SqlState::ADMIN_SHUTDOWN
                || c == &SqlState::CRASH_SHUTDOWN
                || c.code().starts_with("08")
        })
}

/// Shorthand for results in this crate.
pub type Result<T, E = PgError> = std::result::Result<T, E>;
