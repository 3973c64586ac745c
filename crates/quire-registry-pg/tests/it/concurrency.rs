//! Writers in several threads, each with its own pool of connections, on one registry.

use quire_store::Registry;
use quire_store::registry::Published;
use quire_store::registry::conformance::manifest;

use crate::support::{Server, check_contiguous, draft, idx, set};

#[test]
fn two_writers_on_one_alias_keep_revisions_and_audit_seqs_contiguous() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = server.fresh_db();
    let registries = [server.registry(&url), server.registry(&url)];
    const EACH: u8 = 25;
    let committed: Vec<Vec<(u64, u8)>> = std::thread::scope(|s| {
        let writers: Vec<_> = registries
            .iter()
            .enumerate()
            .map(|(t, r)| {
                s.spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let n = t as u8 * EACH + i + 1;
                            (set(r, "a", idx(n)).expect("set"), n)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // A third writer appends events of its own meanwhile: one chain for all of them.
        let appender = s.spawn(|| {
            for i in 0..20 {
                registries[0]
                    .append_audit(draft("test", &i.to_string()))
                    .expect("append");
            }
        });
        appender.join().expect("appender");
        writers
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .collect()
    });
    let (revisions, events) = check_contiguous(&registries[1], "a");
    assert_eq!((revisions, events), (50, 70));
    // Each writer was told the revision its change became, and that revision is its change.
    let history = registries[0].alias_history("a").expect("history");
    for (revision, n) in committed.iter().flatten() {
        assert_eq!(history[*revision as usize - 1].state.primary, idx(*n));
    }
    let events = registries[0].audit_events().expect("events");
    assert_eq!(
        events.iter().filter(|e| e.action == "alias.set").count(),
        50,
        "one audit event per revision"
    );
}

#[test]
fn two_builders_racing_on_one_index_id_leave_one_record_and_one_event() {
    let Some(server) = Server::start() else {
        return;
    };
    let url = server.fresh_db();
    let registries = [server.registry(&url), server.registry(&url)];
    for round in 1..=10u8 {
        let id = idx(round);
        let outcomes: Vec<Published> = std::thread::scope(|s| {
            let builders: Vec<_> = registries
                .iter()
                .zip(["bytes-a", "bytes-b"])
                .map(|(r, digest)| {
                    let manifest = manifest(id.clone(), digest);
                    s.spawn(move || {
                        let target = manifest.index_id.to_string();
                        r.put_manifest(&manifest, draft("index.build", &target))
                            .expect("publish")
                    })
                })
                .collect();
            builders
                .into_iter()
                .map(|b| b.join().expect("builder"))
                .collect()
        });
        let winners: Vec<&Published> = outcomes
            .iter()
            .filter(|o| matches!(o, Published::Recorded(_)))
            .collect();
        assert_eq!(winners.len(), 1, "{outcomes:?}");
        let Some(Published::Exists { content_digest }) = outcomes
            .iter()
            .find(|o| matches!(o, Published::Exists { .. }))
        else {
            panic!("the loser learns it lost: {outcomes:?}");
        };
        // The loser is told the winner's digest, whichever won.
        let winner = outcomes
            .iter()
            .position(|o| matches!(o, Published::Recorded(_)));
        assert_eq!(content_digest, ["bytes-a", "bytes-b"][winner.unwrap_or(0)]);
    }
    let events = registries[0].audit_events().expect("events");
    assert_eq!(events.len(), 10, "one index.build event per id");
    assert!(registries[1].verify_audit().expect("verify").ok);
}
