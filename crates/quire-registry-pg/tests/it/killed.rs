//! Connections killed by the server (`pg_terminate_backend`) in the middle of changes.

use std::sync::atomic::{AtomicBool, Ordering};

use quire_release::AliasChange;
use quire_store::Registry;

use crate::support::{Server, check_contiguous, draft, idx, set, with_option};

const VICTIM: &str = "quire-victim";

#[test]
fn a_change_whose_connection_is_killed_is_absent_and_a_retry_applies_once() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = server.fresh_db();
    let registry = server.registry(&with_option(&url, &format!("application_name={VICTIM}")));
    let side = server.side(&url);
    assert_eq!(set(&registry, "a", idx(1)).expect("set"), 1);
    let change = AliasChange::Set(idx(2));
    // Killed while it holds the head lock, between reading the history and writing.
    let killed = registry.commit_alias("a", &mut |history, _| {
        assert!(
            side.terminate(VICTIM) >= 1,
            "the change's backend was running"
        );
        let revision = change.revise("a", history, "t".into(), "test", "test")?;
        Ok((revision, draft("alias.set", "a")))
    });
    let err = killed
        .expect_err("the change's connection died")
        .to_string();
    assert!(err.starts_with("registry postgres://"), "{err}");
    assert_eq!(
        check_contiguous(&registry, "a"),
        (1, 1),
        "nothing of it landed"
    );
    assert_eq!(
        registry.alias_history("a").expect("history")[0]
            .state
            .primary,
        idx(1)
    );
    // The pool drops the dead connection; the retried change applies once.
    assert_eq!(set(&registry, "a", idx(2)).expect("retry"), 2);
    assert_eq!(check_contiguous(&registry, "a"), (2, 2));
}

#[test]
fn changes_under_repeated_connection_kills_are_each_wholly_there_or_absent() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = server.fresh_db();
    let victim = server.registry(&with_option(&url, &format!("application_name={VICTIM}")));
    let witness = server.registry(&url);
    let side = server.side(&url);
    let stop = AtomicBool::new(false);
    const ATTEMPTS: u8 = 60;
    let (oks, failures) = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                side.terminate(VICTIM);
                std::thread::sleep(std::time::Duration::from_millis(15));
            }
        });
        let mut oks = Vec::new();
        let mut failures = 0;
        for n in 1..=ATTEMPTS {
            // Besides the killer's random timing (idle, mid-statement, at commit), every fourth
            // change is killed for sure while it holds the head lock.
            let change = AliasChange::Set(idx(n));
            let result = victim.commit_alias("a", &mut |history, _| {
                if n % 4 == 0 {
                    side.terminate(VICTIM);
                }
                let revision = change.revise("a", history, "t".into(), "test", "test")?;
                Ok((revision, draft("alias.set", "a")))
            });
            match result {
                Ok((revision, _)) => oks.push((revision.revision, n)),
                Err(_) => failures += 1,
            }
        }
        stop.store(true, Ordering::Relaxed);
        (oks, failures)
    });
    eprintln!("{} changes acknowledged, {failures} failed", oks.len());
    assert!(failures >= ATTEMPTS / 4, "every fourth change was killed");
    let (revisions, events) = check_contiguous(&witness, "a");
    assert_eq!(
        revisions, events,
        "every revision has its audit event and no more"
    );
    assert!(oks.len() as u64 <= revisions && revisions <= u64::from(ATTEMPTS));
    let history = witness.alias_history("a").expect("history");
    for (revision, n) in &oks {
        assert_eq!(history[*revision as usize - 1].state.primary, idx(*n));
    }
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// url");
    let (authority, path) = rest.split_once('/').expect("a database");
    let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    format!("{scheme}://{}{addr}/{path}", user.unwrap_or_default())
}

#[test]
fn a_change_whose_commit_answer_is_lost_is_reported_done_and_applied_once() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = server.fresh_db();
    let witness = server.registry(&url);
    let side = server.side(&url);
    let upstream = url.split_once('@').unwrap().1.split_once('/').unwrap().0;
    let proxy = quire_testkit::proxy::Proxy::start(upstream.parse().unwrap());
    let proxied = proxy.endpoint().replace("http://", "");
    let registry = server.registry(&through(&url, &proxied));
    assert_eq!(set(&registry, "a", idx(1)).expect("set"), 1);
    // Every commit that inserts a revision now takes a second (a deferred trigger sleeps in
    // it); the connection is cut meanwhile, so the server commits and its answer is lost.
    side.run(
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$; \
         CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON alias_revisions \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();",
    );
    let change = AliasChange::Set(idx(2));
    let (decided, cut) = std::sync::mpsc::channel();
    let result = std::thread::scope(|s| {
        let proxy = &proxy;
        s.spawn(move || {
            cut.recv().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(400));
            proxy.cut();
        });
        registry.commit_alias("a", &mut |history, _| {
            decided.send(()).unwrap();
            let revision = change.revise("a", history, "t".into(), "test", "test")?;
            Ok((revision, draft("alias.set", "a")))
        })
    });
    let (revision, _) = result.expect("the change landed, and is reported so");
    assert_eq!(revision.revision, 2);
    assert_eq!(check_contiguous(&witness, "a"), (2, 2), "applied once");
    side.run("DROP TRIGGER slow_commit ON alias_revisions");

    // A change cut off before its commit is absent and reported failed.
    let change = AliasChange::Set(idx(3));
    let failed = registry.commit_alias("a", &mut |history, _| {
        proxy.cut();
        let revision = change.revise("a", history, "t".into(), "test", "test")?;
        Ok((revision, draft("alias.set", "a")))
    });
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(
        check_contiguous(&witness, "a"),
        (2, 2),
        "nothing of it landed"
    );
    assert_eq!(set(&registry, "a", idx(3)).expect("retry"), 3);
}
