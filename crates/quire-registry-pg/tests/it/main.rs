//! quire-registry-pg against a real PostgreSQL (`scripts/test-services start`): the registry
//! conformance suite, concurrent writers, killed connections, migrations and notifications.
//! Each test works in a database of its own. Without a server these tests skip, except under
//! `CI=true`, where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod concurrency;
mod killed;
mod schema;

use quire_registry_pg::{PgOptions, PgRegistry};
use quire_store::Registry;

#[test]
fn postgres_passes_the_registry_conformance_suite() {
    let Some(server) = support::Server::start() else {
        return;
    };
    quire_store::registry::conformance::run(&|| -> Box<dyn Registry> {
        Box::new(server.registry(&server.fresh_db()))
    });
}

#[test]
fn the_store_runs_on_a_postgres_registry() {
    let Some(server) = support::Server::start() else {
        return;
    };
    let url = server.fresh_db();
    let dir = tempfile::TempDir::new().unwrap();
    let open = |access| {
        let registry = PgRegistry::connect(
            &url.parse().unwrap(),
            PgOptions {
                migrate: true,
                read_only: access == quire_store::Access::Read,
                ..PgOptions::default()
            },
        )
        .unwrap();
        quire_store::Store::open_with_registry(dir.path(), access, Box::new(registry)).unwrap()
    };
    let store = open(quire_store::Access::Write);
    store
        .audit(quire_store::AuditDraft {
            actor: "t".into(),
            action: "test".into(),
            ..Default::default()
        })
        .unwrap();
    assert!(!dir.path().join(quire_store::REGISTRY_FILE).exists());
    drop(store);
    let reader = open(quire_store::Access::Read);
    assert_eq!(reader.audit_events().unwrap().len(), 1);
    let refused = reader
        .audit(quire_store::AuditDraft::default())
        .unwrap_err();
    assert!(refused.to_string().contains("read-only"), "{refused}");
}
