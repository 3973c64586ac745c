//! After a commit whose answer was lost (the connection, or the whole server, died while the
//! `COMMIT` was in flight), the change is wholly there or wholly absent, but the client cannot
//! tell which. For an alias change the registry asks the server again, for a bounded time, once
//! it holds the audit head lock (so the cut-off transaction has ended): the revision it wrote, read back equal (time, actor and reason included, so another writer's
//! revision of the same number never matches), means the change landed and is reported done;
//! anything else means it did not, and the original error stands. So a caller that retries a
//! failed change never applies it twice.

use std::time::{Duration, Instant};

use quire_release::AliasRevision;
use quire_release::audit::AuditEvent;
use quire_store::StoreError;

use crate::registry::PgRegistry;

/// How long the outcome is asked for before it is reported unknown (a restarting server
/// takes a few seconds), and how long between attempts.
const ASK_FOR: Duration = Duration::from_secs(15);
const PAUSE: Duration = Duration::from_millis(200);

impl PgRegistry {
    /// What became of `written` (revision and audit event) after its commit failed with
    /// `lost`: done if the server holds that revision as written, else `lost`.
    pub(crate) fn confirm_alias_commit(
        &self,
        written: (AliasRevision, AuditEvent),
        lost: StoreError,
    ) -> quire_store::Result<(AliasRevision, AuditEvent)> {
        let (revision, event) = written;
        let number = i64::try_from(revision.revision).unwrap_or(i64::MAX);
        let started = Instant::now();
        let stored = loop {
            // The head lock first: the cut-off transaction held it, so once it is ours that
            // transaction has ended (committed or rolled back), on a server still committing
            // it too.
            let read = self.transaction(|tx| {
                tx.lock_head()?;
                tx.query(
                    "read back an alias revision whose commit was cut off",
                    "SELECT body::text FROM alias_revisions WHERE alias = $1 AND revision = $2",
                    &[&revision.alias.as_str(), &number],
                )
            });
            match read.and_then(|rows| self.bodies::<AliasRevision>(&rows)) {
                Ok(mut bodies) => break bodies.pop(),
                Err(e) if started.elapsed() >= ASK_FOR => {
                    return Err(StoreError::Backend {
                        registry: self.redacted().to_owned(),
                        reason: format!(
                            "{lost}; whether revision {} of alias {:?} was committed is \
                             unknown (the registry has not answered for {} s: {e}); read the \
                             alias's history before retrying",
                            revision.revision,
                            revision.alias,
                            ASK_FOR.as_secs()
                        ),
                    });
                }
                Err(_) => std::thread::sleep(PAUSE),
            }
        };
        if stored.as_ref() == Some(&revision) {
            tracing::warn!(alias = %revision.alias, revision = revision.revision,
                "the commit's answer was lost, but the change was committed");
            Ok((revision, event))
        } else {
            tracing::warn!(alias = %revision.alias, revision = revision.revision,
                "the commit's answer was lost, and the change was not committed");
            Err(lost)
        }
    }
}
