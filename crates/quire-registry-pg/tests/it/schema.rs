//! Schema migrations, refusals of a schema that is not this quire's, credentials kept out of
//! messages, and notifications of committed changes.

use std::time::Duration;

use quire_registry_pg::{PgOptions, PgRegistry, PgUrl, SCHEMA_VERSION};
use quire_store::{Registry, StoreError};

use crate::support::{Server, draft, idx, set, with_db};

fn url(text: &str) -> PgUrl {
    text.parse().expect("url")
}

#[test]
fn an_unmigrated_database_is_refused_naming_the_command() {
    let Some(server) = Server::start() else {
        return;
    };
    let db = server.fresh_db();
    let err = PgRegistry::connect(&url(&db), PgOptions::default())
        .expect_err("no schema")
        .to_string();
    assert!(
        err.contains("has no quire schema") && err.contains("quire registry migrate"),
        "{err}"
    );
}

#[test]
fn migrations_are_idempotent_and_concurrent_migrators_apply_them_once() {
    let Some(server) = Server::start() else {
        return;
    };
    let db = server.fresh_db();
    let target = url(&db);
    let reports: Vec<_> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| PgRegistry::migrate_at(&target).expect("migrate")))
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("migrator"))
            .collect()
    });
    let every: Vec<i32> = (1..=SCHEMA_VERSION).collect();
    assert_eq!(
        reports.iter().filter(|r| r.applied == every).count(),
        1,
        "{reports:?}"
    );
    assert!(
        reports.iter().all(|r| r.version == SCHEMA_VERSION),
        "{reports:?}"
    );
    let again = PgRegistry::migrate_at(&target).expect("migrate again");
    assert!(
        again.applied.is_empty() && again.version == SCHEMA_VERSION,
        "{again:?}"
    );
    let side = server.side(&db);
    assert_eq!(
        side.column("SELECT count(*) FROM schema_migrations"),
        [SCHEMA_VERSION.to_string()]
    );
    let registry = PgRegistry::connect(&target, PgOptions::default()).expect("current schema");
    assert_eq!(set(&registry, "a", idx(1)).expect("set"), 1);
}

#[test]
fn a_schema_this_quire_does_not_know_is_refused() {
    let Some(server) = Server::start() else {
        return;
    };
    let db = server.fresh_db();
    PgRegistry::migrate_at(&url(&db)).expect("migrate");
    server.side(&db).run(&format!(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES ({}, 'future', 'x')",
        SCHEMA_VERSION + 1
    ));
    for err in [
        PgRegistry::connect(&url(&db), PgOptions::default())
            .expect_err("newer")
            .to_string(),
        PgRegistry::migrate_at(&url(&db))
            .expect_err("newer")
            .to_string(),
    ] {
        assert!(
            err.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
                && err.contains("upgrade quire"),
            "{err}"
        );
    }
}

#[test]
fn errors_never_show_the_password() {
    let Some(server) = Server::start() else {
        return;
    };
    let db = server.fresh_db();
    let (head, tail) = db.split_once("://").expect("url");
    let tail = tail.split_once('@').map_or(tail, |(_, host)| host);
    let secret = format!("{head}://quire:pw-s3cret@{tail}");
    let missing = with_db(&secret, "no_such_database");
    let err = PgRegistry::connect(&url(&missing), PgOptions::default())
        .expect_err("no such database or role")
        .to_string();
    assert!(
        err.contains("postgres://quire@") && !err.contains("pw-s3cret"),
        "{err}"
    );
    assert!(!format!("{:?}", url(&secret)).contains("pw-s3cret"));
}

#[test]
fn a_committed_alias_change_is_notified_and_a_refused_one_is_not() {
    let Some(server) = Server::start() else {
        return;
    };
    let db = server.fresh_db();
    let registry = server.registry(&db);
    let side = server.side(&db);
    side.run(&format!("LISTEN {}", quire_registry_pg::ALIAS_CHANNEL));
    assert_eq!(set(&registry, "a", idx(1)).expect("set"), 1);
    let notes = side.notes.lock().expect("notes");
    let note = notes
        .recv_timeout(Duration::from_secs(5))
        .expect("a notification");
    assert_eq!(note, r#"{"alias":"a","revision":1}"#);
    let refused = registry.commit_alias("a", &mut |_, _| {
        Err(StoreError::Invalid {
            field: "test",
            reason: "refused".into(),
        })
    });
    assert!(refused.is_err());
    registry.append_audit(draft("test", "x")).expect("append");
    assert!(
        notes.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing else was notified"
    );
}
