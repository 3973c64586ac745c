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
