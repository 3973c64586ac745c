//! Refused requests in the audit log at a bounded rate.
//!
//! Every refusal used to be a durable audit event, so a reader token looping on a call it may
//! not make wrote tens of thousands of events a minute. Now the first refusal of each (caller,
//! kind) in a window is recorded at once, and the rest of that window only counted: when the
//! window has passed, one more event records how many were suppressed. The keys are the
//! configured token names (or one name for unknown tokens) and a fixed set of kinds (RPC names),
//! never a caller-chosen string, so both memory and the events written per minute are bounded
//! by the configuration.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use quire_store::AuditDraft;
use serde_json::{Value, json};

use crate::auth::Caller;

/// How long a window of one (caller, kind) lasts.
pub(crate) const DENIAL_WINDOW: Duration = Duration::from_secs(60);

/// The actor recorded for a request whose token is unknown (the token itself is never logged).
pub(crate) const UNKNOWN_TOKEN: &str = "<unknown token>";

/// A refusal to record: who tried (`actor`), which kind of request (`kind`, an RPC name), what
/// it was aimed at (`target`) and why it was refused (`evidence`).
pub(crate) struct Denial {
    pub actor: String,
    pub action: &'static str,
    pub kind: &'static str,
    pub target: String,
    pub evidence: Value,
}

/// The refusal of `caller`'s request in `rpc` for its end user's JWT (`auth.jwt_refused`):
/// invalid, or missing where the token must send one. `message` says why, never repeating the
/// JWT.
pub(crate) fn jwt_refused(caller: &Caller, rpc: &'static str, message: &str) -> Denial {
    Denial {
        actor: caller.name.clone(),
        action: "auth.jwt_refused",
        kind: rpc,
        target: rpc.to_owned(),
        evidence: json!({ "message": message }),
    }
}

/// The open windows, by (actor, action, kind).
#[derive(Default)]
pub(crate) struct Denials {
    windows: Mutex<BTreeMap<(String, &'static str, &'static str), Window>>,
}

struct Window {
    opened: Instant,
    /// Refusals after the first in this window, not recorded one by one.
    suppressed: u64,
}

impl Denials {
    /// Note `denial` at `now`; returns the events to record: the denial itself when it opens a
    /// window (after the summary of the window it replaces, if that suppressed any), else none.
    pub(crate) fn note(&self, denial: Denial, now: Instant) -> Vec<AuditDraft> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (denial.actor.clone(), denial.action, denial.kind);
        let mut drafts = Vec::new();
        if let Some(window) = windows.get_mut(&key) {
            if now.duration_since(window.opened) < DENIAL_WINDOW {
                window.suppressed += 1;
                return drafts;
            }
            drafts.extend(summary(&key, window));
        }
        windows.insert(
            key,
            Window {
                opened: now,
                suppressed: 0,
            },
        );
        drafts.push(AuditDraft {
            actor: denial.actor,
            action: denial.action.into(),
            target: denial.target,
            evidence: denial.evidence,
            ..AuditDraft::default()
        });
        drafts
    }

    /// Close every window that has passed at `now` (all of them with `None`, at shutdown);
    /// returns a summary event for each that suppressed refusals.
    pub(crate) fn close(&self, now: Option<Instant>) -> Vec<AuditDraft> {
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let mut drafts = Vec::new();
        windows.retain(|key, window| {
            let passed = now.is_none_or(|now| now.duration_since(window.opened) >= DENIAL_WINDOW);
            if passed {
                drafts.extend(summary(key, window));
            }
            !passed
        });
        drafts
    }
}

/// The event for a window's suppressed refusals, if any.
fn summary(key: &(String, &'static str, &'static str), window: &Window) -> Option<AuditDraft> {
    let (actor, action, kind) = key;
    (window.suppressed > 0).then(|| AuditDraft {
        actor: actor.clone(),
        action: (*action).into(),
        target: (*kind).into(),
        evidence: json!({
            "repeated": window.suppressed,
            "within_secs": DENIAL_WINDOW.as_secs(),
            "message": format!(
                "{} more refusals of {kind} to this caller within {} s of the one recorded",
                window.suppressed,
                DENIAL_WINDOW.as_secs()
            ),
        }),
        ..AuditDraft::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(actor: &str, kind: &'static str, target: &str) -> Denial {
        Denial {
            actor: actor.into(),
            action: "auth.denied",
            kind,
            target: target.into(),
            evidence: json!({ "message": "no" }),
        }
    }

    #[test]
    fn one_event_per_window_then_a_count() {
        let denials = Denials::default();
        let t0 = Instant::now();
        let first = denials.note(denial("r", "Build", "Build"), t0);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].target, "Build");
        for i in 1..=500u64 {
            let at = t0 + Duration::from_millis(i);
            // Other targets of the same kind share the window: targets are caller-chosen.
            assert!(
                denials
                    .note(denial("r", "Build", &format!("x{i}")), at)
                    .is_empty()
            );
        }
        // Another caller, or another kind, has a window of its own.
        assert_eq!(denials.note(denial("b", "Build", "Build"), t0).len(), 1);
        assert_eq!(denials.note(denial("r", "Gc", "Gc"), t0).len(), 1);
        assert!(denials.close(Some(t0 + Duration::from_secs(59))).is_empty());
        let closed = denials.close(Some(t0 + DENIAL_WINDOW));
        assert_eq!(closed.len(), 1, "only r/Build suppressed refusals");
        assert_eq!(closed[0].actor, "r");
        assert_eq!(closed[0].evidence["repeated"], 500);
        // The next refusal opens a new window and is recorded at once.
        let later = t0 + DENIAL_WINDOW * 2;
        assert_eq!(denials.note(denial("r", "Build", "Build"), later).len(), 1);
    }

    #[test]
    fn a_refusal_after_the_window_records_the_old_count_first() {
        let denials = Denials::default();
        let t0 = Instant::now();
        denials.note(denial("r", "Build", "Build"), t0);
        denials.note(denial("r", "Build", "Build"), t0);
        let next = denials.note(denial("r", "Build", "Build"), t0 + DENIAL_WINDOW);
        assert_eq!(next.len(), 2);
        assert_eq!(next[0].evidence["repeated"], 1);
        assert_eq!(next[1].evidence["message"], "no");
        // Shutdown closes every window; nothing suppressed, nothing to write.
        assert!(denials.close(None).is_empty());
    }
}
