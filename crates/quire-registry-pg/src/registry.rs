//! [`PgRegistry`]: the [`Registry`] in PostgreSQL.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use quire_core::{IndexId, Manifest};
use quire_release::audit::{
    AuditDraft, AuditEvent, AuditVerification, decode_record, verify_chain,
};
use quire_release::outcome::FeedbackRecord;
use quire_release::{AliasRevision, CanaryReport, Pin, ReportRecord, SampleQuery, SampleRecord};
use quire_store::StoreError;
use quire_store::registry::{Decide, OnChange, Published, Registry};
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row};

use crate::error::{PgError, RETRIES, Result, describe, lost};
use crate::migrate::{self, MigrationReport};
use crate::tx::{Head, Params, Statement, Tx};
use crate::url::PgUrl;
use quire_bridge::Bridge;

/// A stored audit record: seq, then the chain hash and the canonical event.
type Record = (u64, Vec<u8>);

/// The channel a committed alias change is announced on; the payload is
/// `{"alias": NAME, "revision": N}`.
pub const ALIAS_CHANNEL: &str = "quire_alias";

/// Session settings when the URL gives no `options` of its own.
const SESSION_LIMITS: &str =
    "-c statement_timeout=30000 -c lock_timeout=30000 -c idle_in_transaction_session_timeout=60000";

/// How to open a [`PgRegistry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// Apply pending schema migrations first (otherwise a schema that is not current is
    /// refused, naming `quire registry migrate`).
    pub migrate: bool,
    /// Refuse every change (a reader's registry).
    pub read_only: bool,
    /// Connections in the pool.
    pub max_connections: usize,
    /// Connecting, and waiting for a pooled connection, give up after this long.
    pub timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            migrate: false,
            read_only: false,
            max_connections: 4,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The registry in a PostgreSQL database (see the crate docs).
pub struct PgRegistry {
    pub(crate) shown: String,
    pool: Pool,
    /// How to connect, for the listening connection outside the pool.
    pub(crate) config: tokio_postgres::Config,
    read_only: bool,
    // Dropped last: the pool's connections run on it.
    pub(crate) bridge: Bridge,
}

impl std::fmt::Debug for PgRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRegistry")
            .field("registry", &self.shown)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

fn encode<T: serde::Serialize>(value: &T) -> quire_store::Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Encode {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    })
}

impl PgRegistry {
    /// Connect to the registry at `url`, migrating first if `options` say so, and check its
    /// schema. Nothing in errors or logs shows the URL's password.
    pub fn connect(url: &PgUrl, options: PgOptions) -> Result<Self> {
        let registry = Self::pool(url, options)?;
        if options.migrate {
            let report = registry.migrate()?;
            if !report.applied.is_empty() {
                tracing::info!(registry = %registry.shown, applied = ?report.applied, "registry schema migrated");
            }
        }
        let client = registry.client()?;
        registry
            .bridge
            .block_on(migrate::check(&client, &registry.shown))?;
        drop(client);
        Ok(registry)
    }

    /// Apply every pending schema migration to the database at `url` (`quire registry
    /// migrate`); running it again applies nothing.
    pub fn migrate_at(url: &PgUrl) -> Result<MigrationReport> {
        let options = PgOptions {
            max_connections: 1,
            ..PgOptions::default()
        };
        Self::pool(url, options)?.migrate()
    }

    /// The registry's pool, without touching the database yet.
    fn pool(url: &PgUrl, options: PgOptions) -> Result<Self> {
        let shown = url.redacted().to_owned();
        let bridge = Bridge::new("quire-registry-pg").map_err(|e| PgError::Runtime {
            registry: shown.clone(),
            reason: e.to_string(),
        })?;
        let mut config = url.config().clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("quire");
        }
        if config.get_options().is_none() {
            // A statement never waits unbounded (the head lock included), and a client that
            // stalls inside a change (stopped, partitioned) loses its session, and so the
            // head lock, instead of holding every other writer up.
            config.options(SESSION_LIMITS);
        }
        config.keepalives_idle(Duration::from_secs(30));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // A pooled connection is checked with an empty query before each use, so one
                // the server closed meanwhile (a restart, `pg_terminate_backend`) is replaced
                // instead of failing the next change.
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .build()
            .map_err(|e| PgError::Connect {
                registry: shown.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            shown,
            pool,
            config,
            read_only: options.read_only,
            bridge,
        })
    }

    /// Apply every pending schema migration (idempotent).
    pub fn migrate(&self) -> Result<MigrationReport> {
        let mut client = self.client()?;
        self.bridge
            .block_on(migrate::migrate(&mut client, &self.shown))
    }

    /// The registry's URL without credentials.
    pub fn redacted(&self) -> &str {
        &self.shown
    }

    fn client(&self) -> Result<Object> {
        self.bridge
            .block_on(self.pool.get())
            .map_err(|e| PgError::Connect {
                registry: self.shown.clone(),
                reason: match &e {
                    deadpool_postgres::PoolError::Backend(b) => describe(b),
                    other => other.to_string(),
                },
            })
    }

    /// Run `f` in one read-committed transaction, committed if it succeeds.
    pub(crate) fn transaction<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> quire_store::Result<T>,
    ) -> quire_store::Result<T> {
        if self.read_only {
            return Err(StoreError::ReadOnly {
                path: PathBuf::from(&self.shown),
            });
        }
        // The pool checked the connection is alive (`Verified` recycling).
        let mut client = self.client()?;
        let tx = self
            .bridge
            .block_on(client.transaction())
            .map_err(|e| self.backend("begin", &e))?;
        let tx = Tx {
            tx,
            bridge: &self.bridge,
            registry: &self.shown,
        };
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// [`PgRegistry::transaction`], telling a failed commit (whose outcome the client cannot
    /// know: the server may have committed before the connection died) from every other
    /// failure (nothing was changed): `Err((true, _))` for the former.
    pub(crate) fn transaction_or_unknown<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> quire_store::Result<T>,
    ) -> std::result::Result<T, (bool, StoreError)> {
        let mut at_commit = false;
        self.transaction(|tx| {
            let value = f(tx)?;
            at_commit = true;
            Ok(value)
        })
        .map_err(|e| (at_commit, e))
    }

    /// A change with its audit event: lock the head, make the change, append the event.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> quire_store::Result<(T, AuditDraft)>,
    ) -> quire_store::Result<(T, AuditEvent)> {
        self.transaction(|tx| {
            let head = tx.lock_head()?;
            let (value, draft) = f(tx)?;
            Ok((value, tx.append(head, draft)?))
        })
    }

    /// One statement and its audit event.
    fn write_one(
        &self,
        what: &'static str,
        sql: &str,
        params: Params<'_>,
        draft: AuditDraft,
    ) -> quire_store::Result<AuditEvent> {
        let ((), event) = self.write(|tx| {
            tx.execute(what, sql, params)?;
            Ok(((), draft))
        })?;
        Ok(event)
    }

    /// Rows of one statement outside any explicit transaction.
    pub(crate) fn read(
        &self,
        what: &'static str,
        sql: &str,
        params: Params<'_>,
    ) -> quire_store::Result<Vec<Row>> {
        let mut attempt = 0;
        loop {
            let client = self.client()?;
            let rows = self.bridge.block_on(async {
                let statement = client.prepare_cached(sql).await?;
                client.query(&statement, params).await
            });
            match rows {
                Err(e) if lost(&e) && attempt < RETRIES => attempt += 1,
                result => return result.map_err(|e| self.backend(what, &e)),
            }
        }
    }

    /// Every `body` of `rows` (as text, column 0), decoded.
    pub(crate) fn bodies<T: serde::de::DeserializeOwned>(
        &self,
        rows: &[Row],
    ) -> quire_store::Result<Vec<T>> {
        rows.iter()
            .map(|row| {
                let text: String = row
                    .try_get(0)
                    .map_err(|e| self.backend("read a record", &e))?;
                serde_json::from_str(&text).map_err(|e| StoreError::Backend {
                    registry: self.shown.clone(),
                    reason: format!("undecodable record: {e}"),
                })
            })
            .collect()
    }

    fn backend(&self, what: &str, e: &tokio_postgres::Error) -> StoreError {
        StoreError::Backend {
            registry: self.shown.clone(),
            reason: format!("{what}: {}", describe(e)),
        }
    }

    /// The stored audit records and head, from one snapshot of the database.
    fn audit_snapshot(&self) -> quire_store::Result<(Vec<Record>, Head)> {
        let mut client = self.client()?;
        let tx = self
            .bridge
            .block_on(
                client
                    .build_transaction()
                    .isolation_level(IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start(),
            )
            .map_err(|e| self.backend("begin", &e))?;
        let tx = Tx {
            tx,
            bridge: &self.bridge,
            registry: &self.shown,
        };
        let rows = tx.query(
            "read the audit log",
            "SELECT seq, record FROM audit_events ORDER BY seq",
            &[],
        )?;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.try_get(0).map_err(tx.err("read the audit log"))?;
            let record: Vec<u8> = row.try_get(1).map_err(tx.err("read the audit log"))?;
            records.push((u64::try_from(seq).unwrap_or(0), record));
        }
        let rows = tx.query(
            "read the audit head",
            "SELECT seq, hash FROM audit_head WHERE id",
            &[],
        )?;
        let head = tx.head_of(&rows)?;
        tx.commit()?;
        Ok((records, head))
    }
}

/// Every stored report in `tx`, oldest first (by creation time, then id), as redb orders them.
fn reports_in(tx: &Tx<'_>) -> quire_store::Result<Vec<ReportRecord>> {
    let rows = tx.query("read reports", "SELECT body::text FROM eval_reports", &[])?;
    let mut out: Vec<ReportRecord> = Vec::with_capacity(rows.len());
    for row in &rows {
        let text: String = row.try_get(0).map_err(tx.err("read reports"))?;
        out.push(
            serde_json::from_str(&text)
                .map_err(|e| tx.corrupt(&format!("undecodable report: {e}")))?,
        );
    }
    out.sort_by(|a, b| (&a.created, &a.report_id).cmp(&(&b.created, &b.report_id)));
    Ok(out)
}

/// `alias`'s revisions in `tx`, oldest first.
fn history_in(tx: &Tx<'_>, alias: &str) -> quire_store::Result<Vec<AliasRevision>> {
    let rows = tx.query(
        "read the alias history",
        "SELECT body::text FROM alias_revisions WHERE alias = $1 ORDER BY revision",
        &[&alias],
    )?;
    rows.iter()
        .map(|row| {
            let text: String = row.try_get(0).map_err(tx.err("read the alias history"))?;
            serde_json::from_str(&text)
                .map_err(|e| tx.corrupt(&format!("undecodable revision: {e}")))
        })
        .collect()
}

impl Registry for PgRegistry {
    fn alias_revisions(&self) -> quire_store::Result<BTreeMap<String, Vec<AliasRevision>>> {
        let rows = self.read(
            "read alias revisions",
            "SELECT body::text FROM alias_revisions ORDER BY alias, revision",
            &[],
        )?;
        let mut out: BTreeMap<String, Vec<AliasRevision>> = BTreeMap::new();
        for revision in self.bodies::<AliasRevision>(&rows)? {
            out.entry(revision.alias.clone())
                .or_default()
                .push(revision);
        }
        Ok(out)
    }

    fn alias_heads(&self) -> quire_store::Result<BTreeMap<String, AliasRevision>> {
        self.heads()
    }

    fn listen(&self, on_change: OnChange) -> quire_store::Result<bool> {
        self.listen_for_changes(on_change);
        Ok(true)
    }

    fn alias_history(&self, alias: &str) -> quire_store::Result<Vec<AliasRevision>> {
        let rows = self.read(
            "read the alias history",
            "SELECT body::text FROM alias_revisions WHERE alias = $1 ORDER BY revision",
            &[&alias],
        )?;
        self.bodies(&rows)
    }

    fn commit_alias(
        &self,
        alias: &str,
        decide: Decide<'_>,
    ) -> quire_store::Result<(AliasRevision, AuditEvent)> {
        let mut written = None;
        let result = self.transaction_or_unknown(|tx| {
            let head = tx.lock_head()?;
            // Read after the head lock: under read committed this sees every earlier change.
            let history = history_in(tx, alias)?;
            let reports = || reports_in(tx);
            let (revision, draft) = decide(&history, &reports)?;
            let number =
                i64::try_from(revision.revision).map_err(|_| tx.corrupt("revision overflows"))?;
            let body = encode(&revision)?;
            let payload = serde_json::json!({ "alias": alias, "revision": revision.revision })
                .to_string();
            let change = [
                Statement {
                    what: "insert the alias revision",
                    sql: "INSERT INTO alias_revisions (alias, revision, body) \
                          VALUES ($1, $2, $3::text::jsonb) ON CONFLICT DO NOTHING RETURNING revision",
                    params: &[&alias, &number, &body],
                },
                // Delivered when (and only if) the transaction commits.
                Statement {
                    what: "notify",
                    sql: "SELECT pg_notify($1, $2)",
                    params: &[&ALIAS_CHANNEL, &payload],
                },
            ];
            let (event, rows) = tx.append_with(head, draft, &change)?;
            if rows[0].is_empty() {
                // Another writer got there without the head lock; returning rolls back all.
                return Err(StoreError::Release {
                    alias: alias.to_owned(),
                    reason: format!(
                        "revision {} was written by another writer meanwhile; nothing was \
                         changed, retry",
                        revision.revision
                    ),
                });
            }
            written = Some((revision.clone(), event.clone()));
            Ok((revision, event))
        });
        match (result, written) {
            (Ok(done), _) => Ok(done),
            // The connection died during the commit: ask the server what happened, so that a
            // change that landed is reported as done (and a caller's retry does not apply it
            // a second time), and one that did not as failed.
            (Err((true, lost)), Some(written)) => self.confirm_alias_commit(written, lost),
            (Err((_, e)), _) => Err(e),
        }
    }

    fn put_pin(&self, pin: &Pin, draft: AuditDraft) -> quire_store::Result<AuditEvent> {
        let body = encode(pin)?;
        self.write_one(
            "store the pin",
            "INSERT INTO pins (index_id, holder, body) VALUES ($1, $2, $3::text::jsonb) \
             ON CONFLICT (index_id, holder) DO UPDATE SET body = EXCLUDED.body",
            &[&pin.index_id.as_str(), &pin.holder, &body],
            draft,
        )
    }

    fn remove_pin(
        &self,
        index: &IndexId,
        holder: &str,
        draft: &mut dyn FnMut(&Pin) -> AuditDraft,
    ) -> quire_store::Result<(Pin, AuditEvent)> {
        self.write(|tx| {
            let rows = tx.query(
                "remove the pin",
                "DELETE FROM pins WHERE index_id = $1 AND holder = $2 RETURNING body::text",
                &[&index.as_str(), &holder],
            )?;
            let Some(row) = rows.first() else {
                return Err(StoreError::NotFound {
                    kind: "pin",
                    id: format!("{index} held by {holder}"),
                });
            };
            let text: String = row.try_get(0).map_err(tx.err("remove the pin"))?;
            let pin: Pin = serde_json::from_str(&text)
                .map_err(|e| tx.corrupt(&format!("undecodable pin: {e}")))?;
            let draft = draft(&pin);
            Ok((pin, draft))
        })
    }

    fn pins(&self) -> quire_store::Result<Vec<Pin>> {
        let rows = self.read(
            "read pins",
            "SELECT body::text FROM pins ORDER BY index_id, holder",
            &[],
        )?;
        self.bodies(&rows)
    }

    fn put_manifest(
        &self,
        manifest: &Manifest,
        draft: AuditDraft,
    ) -> quire_store::Result<Published> {
        let body = encode(manifest)?;
        let id = manifest.index_id.as_str();
        self.transaction(|tx| {
            let head = tx.lock_head()?;
            let inserted = tx.query(
                "record the manifest",
                "INSERT INTO manifests (index_id, content_digest, body) \
                 VALUES ($1, $2, $3::text::jsonb) ON CONFLICT DO NOTHING RETURNING index_id",
                &[&id, &manifest.content_digest, &body],
            )?;
            if inserted.is_empty() {
                let rows = tx.query(
                    "read the manifest",
                    "SELECT content_digest FROM manifests WHERE index_id = $1",
                    &[&id],
                )?;
                let row = rows
                    .first()
                    .ok_or_else(|| tx.corrupt("a conflicting manifest vanished"))?;
                let content_digest: String = row.try_get(0).map_err(tx.err("read the manifest"))?;
                return Ok(Published::Exists { content_digest });
            }
            Ok(Published::Recorded(Box::new(tx.append(head, draft)?)))
        })
    }

    fn manifest(&self, id: &IndexId) -> quire_store::Result<Option<Manifest>> {
        self.recorded_manifest(id)
    }

    fn mark_deleting(
        &self,
        id: &IndexId,
        at_us: u64,
        draft: AuditDraft,
    ) -> quire_store::Result<Option<AuditEvent>> {
        self.mark(id, at_us, draft)
    }

    fn deleting(&self) -> quire_store::Result<BTreeMap<IndexId, u64>> {
        self.marks()
    }

    fn unmark_deleting(
        &self,
        id: &IndexId,
        forget: bool,
        draft: AuditDraft,
    ) -> quire_store::Result<AuditEvent> {
        self.unmark(id, forget, draft)
    }

    fn put_eval_report(
        &self,
        record: &ReportRecord,
        draft: AuditDraft,
    ) -> quire_store::Result<AuditEvent> {
        let body = encode(record)?;
        self.write_one(
            "store the report",
            "INSERT INTO eval_reports (report_id, body) VALUES ($1, $2::text::jsonb) \
             ON CONFLICT (report_id) DO UPDATE SET body = EXCLUDED.body",
            &[&record.report_id, &body],
            draft,
        )
    }

    fn eval_reports(&self) -> quire_store::Result<Vec<ReportRecord>> {
        let rows = self.read("read reports", "SELECT body::text FROM eval_reports", &[])?;
        let mut out: Vec<ReportRecord> = self.bodies(&rows)?;
        out.sort_by(|a, b| (&a.created, &a.report_id).cmp(&(&b.created, &b.report_id)));
        Ok(out)
    }

    fn append_audit(&self, draft: AuditDraft) -> quire_store::Result<AuditEvent> {
        Ok(self.write(|_| Ok(((), draft)))?.1)
    }

    fn audit_events(&self) -> quire_store::Result<Vec<AuditEvent>> {
        let (records, _) = self.audit_snapshot()?;
        records
            .iter()
            .map(|(seq, record)| {
                decode_record(record).ok_or_else(|| StoreError::Backend {
                    registry: self.shown.clone(),
                    reason: format!("audit event {seq} does not decode"),
                })
            })
            .collect()
    }

    fn audit_page(&self, after: u64, limit: usize) -> quire_store::Result<Vec<AuditEvent>> {
        let client = self.client()?;
        let what = "read a page of the audit log";
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .bridge
            .block_on(client.query(
                "SELECT seq, record FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &limit],
            ))
            .map_err(|e| self.backend(what, &e))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get(0).map_err(|e| self.backend(what, &e))?;
                let record: Vec<u8> = row.try_get(1).map_err(|e| self.backend(what, &e))?;
                decode_record(&record).ok_or_else(|| StoreError::Backend {
                    registry: self.shown.clone(),
                    reason: format!("audit event {seq} does not decode"),
                })
            })
            .collect()
    }

    fn verify_audit(&self) -> quire_store::Result<AuditVerification> {
        let (records, head) = self.audit_snapshot()?;
        Ok(verify_chain(
            records
                .iter()
                .map(|(seq, record)| (*seq, record.as_slice())),
            head,
        ))
    }

    fn put_samples(&self, samples: &[SampleRecord]) -> quire_store::Result<()> {
        let keyed = samples
            .iter()
            .map(|s| {
                Ok((
                    s.alias.as_str(),
                    i64_of(s.time_us),
                    s.request_id.as_str(),
                    encode(s)?,
                ))
            })
            .collect::<quire_store::Result<Vec<_>>>()?;
        self.insert_keyed(
            "store a sample",
            "INSERT INTO samples (alias, time_us, request_id, body) \
             VALUES ($1, $2, $3, $4::text::jsonb) ON CONFLICT DO NOTHING",
            &keyed,
        )
    }

    fn samples(&self, query: &SampleQuery) -> quire_store::Result<Vec<SampleRecord>> {
        let since = i64_of(query.since_us);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        // The newest `limit` by the order `select` keeps; it then returns them oldest first.
        let rows = self.read(
            "read samples",
            "SELECT body::text FROM samples WHERE time_us >= $1 AND ($2::text IS NULL OR alias = $2) \
             ORDER BY time_us DESC, request_id DESC LIMIT $3",
            &[&since, &query.alias, &limit],
        )?;
        Ok(query.select(self.bodies(&rows)?))
    }

    fn put_canary_report(
        &self,
        report: &CanaryReport,
        draft: AuditDraft,
    ) -> quire_store::Result<AuditEvent> {
        let body = encode(report)?;
        self.write_one(
            "store the canary report",
            "INSERT INTO canary_reports (alias, created_us, report_id, body) \
             VALUES ($1, $2, $3, $4::text::jsonb) \
             ON CONFLICT (alias, created_us, report_id) DO UPDATE SET body = EXCLUDED.body",
            &[
                &report.alias,
                &i64_of(report.created_us),
                &report.report_id,
                &body,
            ],
            draft,
        )
    }

    fn canary_reports(&self, alias: Option<&str>) -> quire_store::Result<Vec<CanaryReport>> {
        let rows = self.read(
            "read canary reports",
            "SELECT body::text FROM canary_reports WHERE ($1::text IS NULL OR alias = $1) \
             ORDER BY created_us, report_id",
            &[&alias],
        )?;
        self.bodies(&rows)
    }

    fn prune_canary_reports(&self, before_us: u64) -> quire_store::Result<u64> {
        let before = i64_of(before_us);
        self.transaction(|tx| {
            tx.execute(
                "prune canary reports",
                "DELETE FROM canary_reports WHERE created_us < $1",
                &[&before],
            )
        })
    }

    fn prune_samples(&self, before_us: u64) -> quire_store::Result<u64> {
        let before = i64_of(before_us);
        self.transaction(|tx| {
            tx.execute(
                "prune samples",
                "DELETE FROM samples WHERE time_us < $1",
                &[&before],
            )
        })
    }

    fn put_feedback(&self, records: &[FeedbackRecord]) -> quire_store::Result<()> {
        let keyed = records
            .iter()
            .map(|r| {
                Ok((
                    r.alias.as_str(),
                    i64_of(r.time_us),
                    r.request_id.as_str(),
                    encode(r)?,
                ))
            })
            .collect::<quire_store::Result<Vec<_>>>()?;
        self.insert_keyed(
            "store feedback",
            "INSERT INTO feedback (alias, time_us, request_id, body) \
             VALUES ($1, $2, $3, $4::text::jsonb) ON CONFLICT DO NOTHING",
            &keyed,
        )
    }

    fn feedback(&self, alias: &str, since_us: u64) -> quire_store::Result<Vec<FeedbackRecord>> {
        let rows = self.read(
            "read feedback",
            "SELECT body::text FROM feedback WHERE alias = $1 AND time_us >= $2 \
             ORDER BY time_us, request_id",
            &[&alias, &i64_of(since_us)],
        )?;
        self.bodies(&rows)
    }

    fn prune_feedback(&self, before_us: u64) -> quire_store::Result<u64> {
        let before = i64_of(before_us);
        self.transaction(|tx| {
            tx.execute(
                "prune feedback",
                "DELETE FROM feedback WHERE time_us < $1",
                &[&before],
            )
        })
    }
}

/// Rows keyed (alias, time in microseconds, request id) with their JSON body.
type Keyed<'a> = (&'a str, i64, &'a str, String);

impl PgRegistry {
    /// Insert keyed rows with `sql` in one transaction, the statements pipelined.
    fn insert_keyed(
        &self,
        what: &'static str,
        sql: &str,
        rows: &[Keyed<'_>],
    ) -> quire_store::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let params: Vec<[&(dyn ToSql + Sync); 4]> = rows
            .iter()
            .map(|(alias, time_us, id, body)| -> [&(dyn ToSql + Sync); 4] {
                [alias, time_us, id, body]
            })
            .collect();
        self.transaction(|tx| {
            let statements: Vec<Statement<'_>> = params
                .iter()
                .map(|params| Statement { what, sql, params })
                .collect();
            tx.batch(&statements)?;
            Ok(())
        })
    }
}

/// A time in microseconds as PostgreSQL's bigint (saturating: no time is that far off).
pub(crate) fn i64_of(us: u64) -> i64 {
    i64::try_from(us).unwrap_or(i64::MAX)
}
