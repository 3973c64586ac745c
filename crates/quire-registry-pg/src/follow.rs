//! What replicas need of the registry besides the trait's basics: the newest revision of every
//! alias in one query, a listening connection that reports changes (and reconnections), the
//! recorded manifests, and GC's deletion marks.

use std::collections::BTreeMap;
use std::time::Duration;

use quire_core::{IndexId, Manifest};
use quire_release::AliasRevision;
use quire_release::audit::{AuditDraft, AuditEvent};
use quire_store::StoreError;
use quire_store::registry::OnChange;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::error::describe;
use crate::registry::{ALIAS_CHANNEL, PgRegistry, i64_of};

/// Wait before connecting again after the listening connection failed or closed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

impl PgRegistry {
    /// The newest revision of every alias.
    pub(crate) fn heads(&self) -> quire_store::Result<BTreeMap<String, AliasRevision>> {
        let rows = self.read(
            "read alias heads",
            "SELECT DISTINCT ON (alias) body::text FROM alias_revisions \
             ORDER BY alias, revision DESC",
            &[],
        )?;
        Ok(self
            .bodies::<AliasRevision>(&rows)?
            .into_iter()
            .map(|r| (r.alias.clone(), r))
            .collect())
    }

    /// Keep a connection outside the pool that `LISTEN`s on [`ALIAS_CHANNEL`] and calls
    /// `on_change` for every notification, and once after each (re)connection: notifications
    /// sent while it was away are lost, so the caller re-reads then. Runs until the registry
    /// is dropped.
    pub(crate) fn listen_for_changes(&self, on_change: OnChange) {
        let config = self.config.clone();
        let shown = self.shown.clone();
        self.bridge.spawn(async move {
            loop {
                if let Err(e) = listen_once(&config, &on_change).await {
                    tracing::warn!(registry = %shown, "listening for alias changes: {}", describe(&e));
                } else {
                    tracing::warn!(registry = %shown, "the listening connection closed; reconnecting");
                }
                tokio::time::sleep(RECONNECT_AFTER).await;
            }
        });
    }

    pub(crate) fn recorded_manifest(&self, id: &IndexId) -> quire_store::Result<Option<Manifest>> {
        let rows = self.read(
            "read the manifest",
            "SELECT body::text FROM manifests WHERE index_id = $1",
            &[&id.as_str()],
        )?;
        Ok(self.bodies::<Manifest>(&rows)?.pop())
    }

    pub(crate) fn mark(
        &self,
        id: &IndexId,
        at_us: u64,
        draft: AuditDraft,
    ) -> quire_store::Result<Option<AuditEvent>> {
        self.transaction(|tx| {
            let head = tx.lock_head()?;
            let inserted = tx.execute(
                "mark for deletion",
                "INSERT INTO deleting (index_id, marked_us) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&id.as_str(), &i64_of(at_us)],
            )?;
            if inserted == 0 {
                return Ok(None);
            }
            Ok(Some(tx.append(head, draft)?))
        })
    }

    pub(crate) fn marks(&self) -> quire_store::Result<BTreeMap<IndexId, u64>> {
        let rows = self.read(
            "read deletion marks",
            "SELECT index_id, marked_us FROM deleting ORDER BY index_id",
            &[],
        )?;
        let mut out = BTreeMap::new();
        for row in &rows {
            let err = |e: tokio_postgres::Error| StoreError::Backend {
                registry: self.shown.clone(),
                reason: format!("read deletion marks: {}", describe(&e)),
            };
            let id: String = row.try_get(0).map_err(err)?;
            let at: i64 = row.try_get(1).map_err(err)?;
            if let Ok(id) = id.parse::<IndexId>() {
                out.insert(id, u64::try_from(at).unwrap_or(0));
            }
        }
        Ok(out)
    }

    pub(crate) fn unmark(
        &self,
        id: &IndexId,
        forget: bool,
        draft: AuditDraft,
    ) -> quire_store::Result<AuditEvent> {
        let ((), event) = self.write(|tx| {
            let removed = tx.execute(
                "remove the deletion mark",
                "DELETE FROM deleting WHERE index_id = $1",
                &[&id.as_str()],
            )?;
            if removed == 0 {
                return Err(StoreError::NotFound {
                    kind: "deletion mark",
                    id: id.to_string(),
                });
            }
            if forget {
                tx.execute(
                    "forget the manifest",
                    "DELETE FROM manifests WHERE index_id = $1",
                    &[&id.as_str()],
                )?;
            }
            Ok(((), draft))
        })?;
        Ok(event)
    }
}

/// One listening connection: connect, `LISTEN`, report the (re)connection, then every
/// notification until the connection ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    on_change: &OnChange,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection is driven here: its messages carry the notifications.
    let (ready, mut listening) = tokio::sync::oneshot::channel::<()>();
    let listen = async move {
        client
            .batch_execute(&format!("LISTEN {ALIAS_CHANNEL}"))
            .await?;
        let _ = ready.send(());
        // Keep the client (and so the session) until the connection ends.
        std::future::pending::<()>().await;
        Ok::<_, tokio_postgres::Error>(client)
    };
    let listen = tokio::spawn(listen);
    // A oneshot receiver must not be polled again once it has completed.
    let mut reported = false;
    let result = loop {
        tokio::select! {
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(_))) => on_change(),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e),
                None => break Ok(()),
            },
            listened = &mut listening, if !reported => {
                reported = true;
                if listened.is_ok() {
                    on_change();
                }
            }
        }
    };
    listen.abort();
    result
}
