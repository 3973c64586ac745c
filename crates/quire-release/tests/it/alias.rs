//! `AliasChange::apply` over random change sequences: whatever the sequence, revisions are
//! contiguous, no arm equals the primary, a rollback restores an earlier primary and keeps the
//! current gate, and canary shares stay in range.

use proptest::prelude::*;
use quire_core::IndexId;
use quire_release::{AliasChange, AliasRevision, BUCKETS, GatePolicy};

fn idx(n: u8) -> IndexId {
    format!("idx-{}", format!("{n:02x}").repeat(32))
        .parse()
        .unwrap()
}

fn policy() -> impl Strategy<Value = GatePolicy> {
    (
        prop::sample::select(vec!["spec-a", "spec-b"]),
        prop::sample::select(vec!["hybrid", "bm25"]),
        prop::option::of(0.0f64..1.0),
        prop::option::of(0.0f64..0.2),
    )
        .prop_map(|(spec, mode, min, max)| GatePolicy {
            eval_spec: spec.into(),
            mode: mode.into(),
            min_ndcg10: min,
            max_regression: max,
        })
}

fn change() -> impl Strategy<Value = AliasChange> {
    let index = (1u8..6).prop_map(idx);
    prop_oneof![
        index.clone().prop_map(AliasChange::Set),
        (index.clone(), 0u32..10_002).prop_map(|(i, bp)| AliasChange::Canary(i, bp)),
        Just(AliasChange::ClearCanary),
        index.prop_map(AliasChange::Shadow),
        Just(AliasChange::ClearShadow),
        Just(AliasChange::Promote),
        prop::option::of(0u64..12).prop_map(AliasChange::Rollback),
        policy().prop_map(AliasChange::SetPolicy),
        Just(AliasChange::ClearPolicy),
        policy().prop_map(AliasChange::Rebaseline),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_change_sequence_keeps_the_alias_invariants(
        changes in prop::collection::vec(change(), 1..40),
    ) {
        let mut history: Vec<AliasRevision> = Vec::new();
        for change in &changes {
            let Ok(next) = change.revise("a", &history, String::new(), "t", "r") else {
                continue;
            };
            // Revisions are contiguous from 1.
            prop_assert_eq!(next.revision, history.len() as u64 + 1);
            let state = &next.state;
            // No arm equals the primary.
            if let Some(c) = &state.canary {
                prop_assert_ne!(&c.index, &state.primary);
                // Shares are in range.
                prop_assert!((1..=BUCKETS as u32).contains(&c.basis_points));
            }
            prop_assert_ne!(state.shadow.as_ref(), Some(&state.primary));
            if let AliasChange::Rollback(_) = change {
                let current = &history.last().unwrap().state;
                // A rollback restores a primary the alias served before ...
                prop_assert!(history.iter().any(|r| r.state.primary == state.primary));
                // ... and keeps the current gate rather than an older one.
                prop_assert_eq!(&state.policy, &current.policy);
            }
            history.push(next);
        }
        let revisions: Vec<u64> = history.iter().map(|r| r.revision).collect();
        let expected: Vec<u64> = (1..=history.len() as u64).collect();
        prop_assert_eq!(revisions, expected);
    }

    #[test]
    fn a_refused_change_names_the_alias(changes in prop::collection::vec(change(), 1..20)) {
        let mut history: Vec<AliasRevision> = Vec::new();
        for change in &changes {
            match change.revise("a", &history, String::new(), "t", "r") {
                Ok(next) => history.push(next),
                Err(e) => prop_assert!(e.to_string().contains("\"a\""), "{}", e),
            }
        }
    }
}
