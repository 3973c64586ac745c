//! Versioned schema migrations: each applied once, in order, recorded in `schema_migrations`
//! with a checksum of its SQL; all pending ones in one transaction under an advisory lock, so
//! concurrent migrators wait for each other and a failed migration leaves nothing behind.

use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{PgError, Result};

struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "registry tables",
        sql: include_str!("../migrations/0001_registry.sql"),
    },
    Migration {
        version: 2,
        name: "sampled requests",
        sql: include_str!("../migrations/0002_samples.sql"),
    },
    Migration {
        version: 3,
        name: "canary reports",
        sql: include_str!("../migrations/0003_canary_reports.sql"),
    },
    Migration {
        version: 4,
        name: "feedback",
        sql: include_str!("../migrations/0004_feedback.sql"),
    },
    Migration {
        version: 5,
        name: "deletion marks",
        sql: include_str!("../migrations/0005_deleting.sql"),
    },
];

/// The schema version this quire reads and writes.
pub const SCHEMA_VERSION: i32 = 5;

/// Serialises migrators (an arbitrary constant: "quire" in ASCII).
const LOCK_KEY: i64 = 0x0071_7569_7265;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// What `quire registry migrate` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// Versions applied by this run, in order (empty: the schema was current).
    pub applied: Vec<i32>,
    /// The schema version now.
    pub version: i32,
}

fn checksum(sql: &str) -> String {
    blake3::hash(sql.as_bytes()).to_hex().to_string()
}

fn query_err(registry: &str, what: &'static str) -> impl Fn(tokio_postgres::Error) -> PgError {
    let registry = registry.to_owned();
    move |e| PgError::Query {
        registry: registry.clone(),
        what,
        reason: crate::error::describe(&e),
    }
}

/// Apply every pending migration.
pub(crate) async fn migrate(client: &mut Client, registry: &str) -> Result<MigrationReport> {
    let err = |what| query_err(registry, what);
    let tx = client.transaction().await.map_err(err("begin"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1::bigint)", &[&LOCK_KEY])
        .await
        .map_err(err("lock migrations"))?;
    tx.batch_execute(CREATE_TABLE)
        .await
        .map_err(err("create schema_migrations"))?;
    let rows = tx
        .query(
            "SELECT version, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(err("read schema_migrations"))?;
    let applied: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    check_applied(&applied, registry)?;
    let mut report = MigrationReport {
        applied: Vec::new(),
        version: applied.last().map_or(0, |(v, _)| *v),
    };
    let current = report.version;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql)
            .await
            .map_err(err("apply migration"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &checksum(m.sql)],
        )
        .await
        .map_err(err("record migration"))?;
        report.applied.push(m.version);
        report.version = m.version;
    }
    tx.commit().await.map_err(err("commit migrations"))?;
    Ok(report)
}

/// Refuse a database whose recorded migrations are not a prefix of this quire's.
fn check_applied(applied: &[(i32, String)], registry: &str) -> Result<()> {
    let schema = |reason: String| PgError::Schema {
        registry: registry.to_owned(),
        reason,
    };
    for (i, (version, sum)) in applied.iter().enumerate() {
        match MIGRATIONS.get(i) {
            Some(m) if m.version == *version && checksum(m.sql) == *sum => {}
            Some(m) if m.version == *version => {
                return Err(schema(format!(
                    "migration {version} ({}) was applied from other SQL than this quire's",
                    m.name
                )));
            }
            _ => {
                return Err(schema(format!(
                    "schema version {version} is not one this quire knows (it knows up to \
                     {SCHEMA_VERSION}): upgrade quire"
                )));
            }
        }
    }
    Ok(())
}

/// Check, without changing anything, that the schema is this quire's.
pub(crate) async fn check(client: &Client, registry: &str) -> Result<()> {
    let missing = |found: &str| PgError::Schema {
        registry: registry.to_owned(),
        reason: format!(
            "{found}, this quire needs {SCHEMA_VERSION}: run `quire registry migrate` (or set \
             `[registry] migrate = true` in server.toml)"
        ),
    };
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .map_err(query_err(registry, "read schema_migrations"))?
        .get(0);
    if !exists {
        return Err(missing("the database has no quire schema"));
    }
    let rows = client
        .query(
            "SELECT version, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(query_err(registry, "read schema_migrations"))?;
    let applied: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    check_applied(&applied, registry)?;
    match applied.last() {
        Some((v, _)) if *v == SCHEMA_VERSION => Ok(()),
        Some((v, _)) => Err(missing(&format!("the schema is at version {v}"))),
        None => Err(missing("the database has no quire schema")),
    }
}
