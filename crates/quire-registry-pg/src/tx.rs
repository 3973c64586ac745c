//! One registry transaction driven from a synchronous caller: statements, the audit head lock
//! and the append of an audit event, each waited for through the [`Bridge`].

use quire_release::audit::{AuditDraft, AuditEvent, GENESIS, seal};
use quire_store::StoreError;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::bridge::Bridge;
use crate::error::describe;

/// Parameters of a statement.
pub(crate) type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// An open transaction; dropped without [`Tx::commit`], it rolls back.
pub(crate) struct Tx<'a> {
    pub(crate) tx: deadpool_postgres::Transaction<'a>,
    pub(crate) bridge: &'a Bridge,
    pub(crate) registry: &'a str,
}

/// The audit chain's head as locked: last seq and hash.
pub(crate) type Head = (u64, [u8; 32]);

impl Tx<'_> {
    pub(crate) fn err(
        &self,
        what: &'static str,
    ) -> impl Fn(tokio_postgres::Error) -> StoreError + use<> {
        let registry = self.registry.to_owned();
        move |e| StoreError::Backend {
            registry: registry.clone(),
            reason: format!("{what}: {}", describe(&e)),
        }
    }

    /// Run a statement that returns rows (prepared once per connection, so each later run is
    /// one round trip).
    pub(crate) fn query(
        &self,
        what: &'static str,
        sql: &str,
        params: Params<'_>,
    ) -> quire_store::Result<Vec<Row>> {
        self.bridge
            .block_on(async {
                let statement = self.tx.prepare_cached(sql).await?;
                self.tx.query(&statement, params).await
            })
            .map_err(self.err(what))
    }

    /// Run a statement; the number of rows it touched.
    pub(crate) fn execute(
        &self,
        what: &'static str,
        sql: &str,
        params: Params<'_>,
    ) -> quire_store::Result<u64> {
        self.bridge
            .block_on(async {
                let statement = self.tx.prepare_cached(sql).await?;
                self.tx.execute(&statement, params).await
            })
            .map_err(self.err(what))
    }

    /// Lock the audit head row until the transaction ends: every change takes this lock
    /// first, so changes are applied one at a time in the order they got it.
    pub(crate) fn lock_head(&self) -> quire_store::Result<Head> {
        let rows = self.query(
            "lock the audit head",
            "SELECT seq, hash FROM audit_head WHERE id FOR UPDATE",
            &[],
        )?;
        self.head_of(&rows)
    }

    /// The head in `rows`, the result of `SELECT seq, hash FROM audit_head`.
    pub(crate) fn head_of(&self, rows: &[Row]) -> quire_store::Result<Head> {
        let row = rows
            .first()
            .ok_or_else(|| self.corrupt("the audit head row is missing"))?;
        let seq: i64 = row.try_get(0).map_err(self.err("read the audit head"))?;
        let hash: Vec<u8> = row.try_get(1).map_err(self.err("read the audit head"))?;
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|_| self.corrupt("the audit head hash is not 32 bytes"))?;
        let seq = u64::try_from(seq).map_err(|_| self.corrupt("the audit head seq is negative"))?;
        Ok((seq, if seq == 0 { GENESIS } else { hash }))
    }

    /// Append `draft` as the event after `head`, and move the head to it.
    pub(crate) fn append(&self, head: Head, draft: AuditDraft) -> quire_store::Result<AuditEvent> {
        let time = jiff::Timestamp::now().to_string();
        let (event, hash, record) = seal(head.0, &head.1, time, draft)?;
        let seq = i64::try_from(event.seq).map_err(|_| self.corrupt("audit seq overflows"))?;
        self.execute(
            "append the audit event",
            "INSERT INTO audit_events (seq, record) VALUES ($1, $2)",
            &[&seq, &record],
        )?;
        self.execute(
            "move the audit head",
            "UPDATE audit_head SET seq = $1, hash = $2 WHERE id",
            &[&seq, &hash.as_slice()],
        )?;
        Ok(event)
    }

    /// Commit; an error leaves the outcome unknown only if the connection died during the
    /// commit itself (the change is then wholly there or wholly absent).
    pub(crate) fn commit(self) -> quire_store::Result<()> {
        let err = self.err("commit");
        self.bridge.block_on(self.tx.commit()).map_err(err)
    }

    pub(crate) fn corrupt(&self, reason: &str) -> StoreError {
        StoreError::Backend {
            registry: self.registry.to_owned(),
            reason: reason.to_owned(),
        }
    }
}
