//! quire's registry in PostgreSQL: [`PgRegistry`] implements [`quire_store::Registry`] (alias
//! revisions, pins, manifests, evaluation reports and the audit chain) over tokio-postgres
//! with a deadpool pool, and passes the same conformance suite as the redb registry.
//!
//! - Every change is one transaction that first locks the audit head row
//!   (`SELECT ... FOR UPDATE`), so changes from any number of processes apply one at a time;
//!   an alias change then reads the alias's history, runs the caller's decision on it, inserts
//!   revision `r + 1`, appends the audit event (chained and hashed by quire-release, exactly
//!   as in redb) and `pg_notify`s [`ALIAS_CHANNEL`], which PostgreSQL delivers at commit.
//! - Publishing a manifest is insert-if-absent: the first build of an id wins, a later one
//!   writes nothing and learns the stored content digest ([`quire_store::Published`]).
//! - The schema is versioned ([`migrate`](PgRegistry::migrate), `schema_migrations`); a
//!   registry whose schema is not current is refused unless opened with
//!   [`PgOptions::migrate`].
//! - The trait is synchronous; the registry owns a one-thread tokio runtime for its
//!   connections and callers wait on their own thread (`bridge.rs` says why that works in
//!   and out of an async context; quire-bridge).
//! - Connections are plain TCP (no TLS yet); [`PgUrl`] never shows a password.

mod confirm;
mod error;
mod follow;
mod migrate;
mod registry;
mod tx;
mod url;

pub use error::{PgError, Result};
pub use migrate::{MigrationReport, SCHEMA_VERSION};
pub use registry::{ALIAS_CHANNEL, PgOptions, PgRegistry};
pub use url::PgUrl;
