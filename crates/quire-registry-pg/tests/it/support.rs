//! The test server: fresh databases, registries on them, and a side connection for SQL the
//! registry does not offer (terminating backends, listening).

use quire_core::IndexId;
use quire_registry_pg::{PgOptions, PgRegistry};
use quire_release::{AliasChange, AuditDraft};
use quire_store::Registry;

/// A PostgreSQL server to test against.
pub struct Server {
    _base: String,
}

impl Server {
    /// The test server, or `None` (skip) when there is none.
    pub fn start() -> Option<Self> {
        Some(Self {
            _base: quire_testkit::postgres()?,
        })
    }

    /// A URL of a new, empty database.
    pub fn fresh_db(&self) -> String {
        quire_testkit::pg::fresh_database().expect("the test server")
    }

    /// A migrated registry on `url`.
    pub fn registry(&self, url: &str) -> PgRegistry {
        PgRegistry::connect(
            &url.parse().expect("url"),
            PgOptions {
                migrate: true,
                ..PgOptions::default()
            },
        )
        .expect("connect")
    }

    /// A side connection to the server.
    pub fn side(&self, url: &str) -> Side {
        Side::connect(url)
    }
}

pub use quire_testkit::pg::with_database as with_db;

/// `url` with one more query option.
pub fn with_option(url: &str, option: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{option}")
}

/// A plain tokio-postgres connection with its own runtime.
pub struct Side {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    pub notes: std::sync::Mutex<std::sync::mpsc::Receiver<String>>,
}

impl Side {
    fn connect(url: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let client = runtime.block_on(async {
            let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("side connection");
            tokio::spawn(async move {
                while let Some(message) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    if let Ok(tokio_postgres::AsyncMessage::Notification(n)) = message {
                        let _ = tx.send(n.payload().to_owned());
                    }
                }
            });
            client
        });
        Self {
            runtime,
            client,
            notes: std::sync::Mutex::new(rx),
        }
    }

    /// Run `sql` (statements without results).
    pub fn run(&self, sql: &str) {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of every row of `sql`, as text.
    pub fn column(&self, sql: &str) -> Vec<String> {
        self.runtime
            .block_on(self.client.simple_query(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect()
    }

    /// Terminate every backend of `application` (a registry's connections) on this side's
    /// database; how many.
    pub fn terminate(&self, application: &str) -> usize {
        self.column(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = '{application}' AND datname = current_database() \
             AND pid <> pg_backend_pid()"
        ))
        .len()
    }
}

/// An index id made of one repeated byte.
pub fn idx(n: u8) -> IndexId {
    format!("idx-{}", format!("{n:02x}").repeat(32))
        .parse()
        .expect("a well-formed index id")
}

/// Point `alias` at `index` as its next revision, like the store does.
pub fn set(registry: &dyn Registry, alias: &str, index: IndexId) -> quire_store::Result<u64> {
    let change = AliasChange::Set(index);
    let (revision, _) = registry.commit_alias(alias, &mut |history, _| {
        let revision = change.revise(alias, history, "t".into(), "test", "test")?;
        Ok((
            revision,
            draft(&format!("alias.{}", change.action()), alias),
        ))
    })?;
    Ok(revision.revision)
}

/// An audit draft.
pub fn draft(action: &str, target: &str) -> AuditDraft {
    AuditDraft {
        actor: "test".into(),
        action: action.into(),
        target: target.into(),
        reason: "test".into(),
        ..AuditDraft::default()
    }
}

/// Revisions of `alias` and seqs of the whole audit log, each checked contiguous from 1, and
/// the chain verified; returns (revisions, events).
pub fn check_contiguous(registry: &dyn Registry, alias: &str) -> (u64, u64) {
    let revisions: Vec<u64> = registry
        .alias_history(alias)
        .unwrap()
        .iter()
        .map(|r| r.revision)
        .collect();
    assert_eq!(revisions, (1..=revisions.len() as u64).collect::<Vec<_>>());
    let seqs: Vec<u64> = registry
        .audit_events()
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let verified = registry.verify_audit().unwrap();
    assert!(verified.ok, "{verified:?}");
    assert_eq!(verified.head_seq, seqs.len() as u64);
    (revisions.len() as u64, seqs.len() as u64)
}
