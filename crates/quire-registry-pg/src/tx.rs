//! One registry transaction driven from a synchronous caller: statements, the audit head lock
//! and the append of an audit event, each waited for through the [`Bridge`].

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use quire_release::audit::{AuditDraft, AuditEvent, GENESIS, seal};
use quire_store::StoreError;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::describe;
use quire_bridge::Bridge;

/// Parameters of a statement.
pub(crate) type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

type PgResult<T> = Result<T, tokio_postgres::Error>;

/// One statement of a [`Tx::batch`].
#[derive(Clone, Copy)]
pub(crate) struct Statement<'p> {
    /// What it does, for errors.
    pub(crate) what: &'static str,
    /// The SQL.
    pub(crate) sql: &'p str,
    /// Its parameters.
    pub(crate) params: Params<'p>,
}

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

    /// Run `statements` pipelined (sent together, answered in order): one round trip. The
    /// rows of each, or the first error (which aborts the transaction).
    pub(crate) fn batch(&self, statements: &[Statement<'_>]) -> quire_store::Result<Vec<Vec<Row>>> {
        type Pending<'f> = Pin<Box<dyn Future<Output = PgResult<Vec<Row>>> + 'f>>;
        let results = self.bridge.block_on(async {
            let mut prepared = Vec::with_capacity(statements.len());
            for s in statements {
                prepared.push(self.tx.prepare_cached(s.sql).await);
            }
            let mut pending: Vec<Option<Pending<'_>>> = statements
                .iter()
                .zip(&prepared)
                .map(|(s, p)| -> Option<Pending<'_>> {
                    match p {
                        Ok(p) => Some(Box::pin(self.tx.query(p, s.params))),
                        Err(_) => None,
                    }
                })
                .collect();
            let mut done: Vec<Option<PgResult<Vec<Row>>>> = std::iter::repeat_with(|| None)
                .take(statements.len())
                .collect();
            std::future::poll_fn(|cx| {
                for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
                    if let Some(f) = future
                        && let Poll::Ready(result) = f.as_mut().poll(cx)
                    {
                        *slot = Some(result);
                        *future = None;
                    }
                }
                if pending.iter().all(Option::is_none) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            drop(pending);
            prepared
                .into_iter()
                .zip(done)
                .map(|(p, rows)| match p {
                    Err(e) => Some(Err(e)),
                    Ok(_) => rows,
                })
                .collect::<Vec<_>>()
        });
        let mut out = Vec::with_capacity(statements.len());
        for (s, rows) in statements.iter().zip(results) {
            let rows = rows.ok_or_else(|| self.corrupt("a pipelined statement never ran"))?;
            out.push(rows.map_err(self.err(s.what))?);
        }
        Ok(out)
    }

    /// Run `first`, then append `draft` as the event after `head` and move the head to it, all
    /// in one round trip; the rows of `first`.
    pub(crate) fn append_with(
        &self,
        head: Head,
        draft: AuditDraft,
        first: &[Statement<'_>],
    ) -> quire_store::Result<(AuditEvent, Vec<Vec<Row>>)> {
        let time = jiff::Timestamp::now().to_string();
        let (event, hash, record) = seal(head.0, &head.1, time, draft)?;
        let seq = i64::try_from(event.seq).map_err(|_| self.corrupt("audit seq overflows"))?;
        let hash = hash.as_slice();
        let event_params: [&(dyn ToSql + Sync); 2] = [&seq, &record];
        let head_params: [&(dyn ToSql + Sync); 2] = [&seq, &hash];
        let mut statements = first.to_vec();
        statements.push(Statement {
            what: "append the audit event",
            sql: "INSERT INTO audit_events (seq, record) VALUES ($1, $2)",
            params: &event_params,
        });
        statements.push(Statement {
            what: "move the audit head",
            sql: "UPDATE audit_head SET seq = $1, hash = $2 WHERE id",
            params: &head_params,
        });
        let mut rows = self.batch(&statements)?;
        rows.truncate(first.len());
        Ok((event, rows))
    }

    /// Append `draft` as the event after `head`, and move the head to it.
    pub(crate) fn append(&self, head: Head, draft: AuditDraft) -> quire_store::Result<AuditEvent> {
        Ok(self.append_with(head, draft, &[])?.0)
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
