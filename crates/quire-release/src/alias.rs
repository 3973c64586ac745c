//! Release aliases: a name that serves a primary index, optionally a canary (a share of
//! routing keys) and a shadow (queried in the background for comparison), with every change
//! kept as a numbered revision. [`AliasChange::apply`] decides what a change does to an
//! alias's history; storing the result is the registry's job.

use quire_core::IndexId;
use quire_core::ids::MIN_PREFIX_HEX;
use serde::{Deserialize, Serialize};

use crate::canary::RollbackPolicy;
use crate::error::{ReleaseError, Result};
use crate::gate::GatePolicy;

/// Routing buckets: a canary at `p` percent takes buckets below `p * 100`.
pub const BUCKETS: u64 = 10_000;

/// A canary arm: an index and the share of routing keys it takes, in basis points (1/100 %).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    /// The canary index.
    pub index: IndexId,
    /// Share of routing keys, in basis points (1..=10000).
    pub basis_points: u32,
}

/// What an alias serves at one revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AliasState {
    /// The index answering requests not routed to the canary.
    pub primary: IndexId,
    /// The canary, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// The shadow, if any: queried after the primary answers, never seen by callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<IndexId>,
    /// The quality gate promotions must pass, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<GatePolicy>,
    /// When a canary evaluation rolls the canary back on its own, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_rollback: Option<RollbackPolicy>,
}

impl AliasState {
    /// Every index this state serves or shadows.
    pub fn indexes(&self) -> impl Iterator<Item = &IndexId> {
        std::iter::once(&self.primary)
            .chain(self.canary.as_ref().map(|c| &c.index))
            .chain(self.shadow.as_ref())
    }
}

/// One revision of an alias: the state it set and who set it, when and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AliasRevision {
    /// The alias.
    pub alias: String,
    /// 1-based revision number.
    pub revision: u64,
    /// RFC 3339 commit time.
    pub time: String,
    /// Who made the change.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// The change, e.g. `set`, `canary`, `promote`, `rollback`.
    pub action: String,
    /// What the alias serves from this revision on.
    #[serde(flatten)]
    pub state: AliasState,
}

/// A change to an alias.
#[derive(Clone, Debug, PartialEq)]
pub enum AliasChange {
    /// Create the alias or repoint its primary.
    Set(IndexId),
    /// Send `basis_points` of routing keys to `index`.
    Canary(IndexId, u32),
    /// Remove the canary.
    ClearCanary,
    /// Shadow the primary with `index`.
    Shadow(IndexId),
    /// Remove the shadow.
    ClearShadow,
    /// Make the canary the primary.
    Promote,
    /// Restore a revision's state (`None`: the previous primary, without canary).
    Rollback(Option<u64>),
    /// Set or retune the quality gate; its eval spec and mode must match the current one.
    SetPolicy(GatePolicy),
    /// Remove the quality gate.
    ClearPolicy,
    /// Move the gate to another eval spec or mode (the primary must have a report under it).
    Rebaseline(GatePolicy),
    /// Set (or with `None` remove) the auto-rollback policy.
    SetAutoRollback(Option<RollbackPolicy>),
    /// Remove the canary `canary` because canary report `report` crossed the alias's
    /// auto-rollback policy (refused when the alias serves another canary by now).
    AutoRollback {
        /// The canary the report evaluated.
        canary: IndexId,
        /// The report, the evidence.
        report: String,
    },
}

impl AliasChange {
    /// The action name recorded in revisions and the audit log.
    pub fn action(&self) -> &'static str {
        match self {
            Self::Set(_) => "set",
            Self::Canary(..) => "canary",
            Self::ClearCanary => "canary.clear",
            Self::Shadow(_) => "shadow",
            Self::ClearShadow => "shadow.clear",
            Self::Promote => "promote",
            Self::Rollback(_) => "rollback",
            Self::SetPolicy(_) => "gate",
            Self::ClearPolicy => "gate.clear",
            Self::Rebaseline(_) => "rebaseline",
            Self::SetAutoRollback(Some(_)) => "auto-rollback",
            Self::SetAutoRollback(None) => "auto-rollback.clear",
            Self::AutoRollback { .. } => "canary.auto-rollback",
        }
    }

    /// The revision this change makes: the next revision number after `history`'s last (1
    /// for a new alias) and the state [`AliasChange::apply`] gives.
    pub fn revise(
        &self,
        alias: &str,
        history: &[AliasRevision],
        time: String,
        actor: &str,
        reason: &str,
    ) -> Result<AliasRevision> {
        let state = self.apply(alias, history)?;
        Ok(AliasRevision {
            alias: alias.to_owned(),
            revision: history.last().map_or(1, |r| r.revision + 1),
            time,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            action: self.action().to_owned(),
            state,
        })
    }

    /// The state after this change, given the alias's history (oldest first; empty when the
    /// alias does not exist yet).
    pub fn apply(&self, alias: &str, history: &[AliasRevision]) -> Result<AliasState> {
        let refuse = |reason: String| ReleaseError::Refused {
            alias: alias.to_owned(),
            reason,
        };
        let Some(current) = history.last() else {
            return match self {
                Self::Set(index) => Ok(AliasState {
                    primary: index.clone(),
                    canary: None,
                    shadow: None,
                    policy: None,
                    auto_rollback: None,
                }),
                _ => Err(ReleaseError::NotFound {
                    kind: "alias",
                    id: alias.to_owned(),
                }),
            };
        };
        let mut next = current.state.clone();
        match self {
            Self::Set(index) => next.primary = index.clone(),
            Self::Canary(index, basis_points) => {
                if !(1..=BUCKETS as u32).contains(basis_points) {
                    return Err(refuse(format!(
                        "canary share {basis_points} basis points is outside 1..=10000"
                    )));
                }
                if *index == next.primary {
                    return Err(refuse(format!("{index} is already the primary")));
                }
                next.canary = Some(Canary {
                    index: index.clone(),
                    basis_points: *basis_points,
                });
            }
            Self::ClearCanary => {
                if next.canary.take().is_none() {
                    return Err(refuse("has no canary to clear".into()));
                }
            }
            Self::Shadow(index) => {
                if *index == next.primary {
                    return Err(refuse(format!("{index} is already the primary")));
                }
                next.shadow = Some(index.clone());
            }
            Self::ClearShadow => {
                if next.shadow.take().is_none() {
                    return Err(refuse("has no shadow to clear".into()));
                }
            }
            Self::Promote => {
                let canary = next
                    .canary
                    .take()
                    .ok_or_else(|| refuse("has no canary to promote".into()))?;
                next.primary = canary.index;
            }
            Self::Rollback(Some(revision)) => {
                let target = history
                    .iter()
                    .find(|r| r.revision == *revision)
                    .ok_or_else(|| {
                        refuse(format!(
                            "has no revision {revision} (latest is {})",
                            current.revision
                        ))
                    })?;
                next = target.state.clone();
            }
            Self::Rollback(None) => {
                let previous = history
                    .iter()
                    .rev()
                    .find(|r| r.state.primary != current.state.primary)
                    .ok_or_else(|| {
                        refuse("has never had another primary to roll back to".into())
                    })?;
                next.primary = previous.state.primary.clone();
                next.canary = None;
            }
            Self::SetPolicy(policy) => {
                if let Some(old) = &next.policy
                    && (old.eval_spec != policy.eval_spec || old.mode != policy.mode)
                {
                    return Err(refuse(format!(
                        "is gated on eval spec {} ({} mode); moving to {} ({} mode) needs `alias rebaseline`",
                        old.eval_spec, old.mode, policy.eval_spec, policy.mode
                    )));
                }
                next.policy = Some(policy.clone());
            }
            Self::ClearPolicy => {
                if next.policy.take().is_none() {
                    return Err(refuse("has no gate to clear".into()));
                }
            }
            Self::Rebaseline(policy) => next.policy = Some(policy.clone()),
            Self::SetAutoRollback(policy) => {
                if policy.is_none() && next.auto_rollback.is_none() {
                    return Err(refuse("has no auto-rollback policy to clear".into()));
                }
                next.auto_rollback = policy.clone();
            }
            Self::AutoRollback { canary, report } => {
                if next.canary.as_ref().map(|c| &c.index) != Some(canary) {
                    return Err(refuse(format!(
                        "no longer serves canary {canary} that report {report} evaluated"
                    )));
                }
                next.canary = None;
            }
        }
        // Rolling back to a revision restores what it served, never an older, laxer gate or
        // rollback policy.
        if matches!(self, Self::Rollback(_)) {
            next.policy = current.state.policy.clone();
            next.auto_rollback = current.state.auto_rollback.clone();
        }
        // An arm equal to the primary is no arm at all.
        if next
            .canary
            .as_ref()
            .is_some_and(|c| c.index == next.primary)
        {
            next.canary = None;
        }
        if next.shadow.as_ref() == Some(&next.primary) {
            next.shadow = None;
        }
        Ok(next)
    }
}

/// An alias change as a client states it: indices by id or prefix, shares in percent.
#[derive(Clone, Debug, PartialEq)]
pub enum AliasChangeRequest {
    /// Create or repoint the primary.
    Set(String),
    /// Send `percent` of routing keys to an index.
    Canary(String, f64),
    /// Remove the canary.
    ClearCanary,
    /// Shadow with an index.
    Shadow(String),
    /// Remove the shadow.
    ClearShadow,
    /// Canary becomes primary.
    Promote,
    /// Back to the previous primary, or to a revision's state.
    Rollback(Option<u64>),
    /// Remove the quality gate.
    ClearGate,
    /// Set (or with `None` remove) the auto-rollback policy.
    AutoRollback(Option<RollbackPolicy>),
}

/// Percent (0 < p <= 100, at most two decimals) as basis points.
pub fn percent_to_basis_points(percent: f64) -> Result<u32> {
    let bp = (percent * 100.0).round();
    if !percent.is_finite()
        || !(1.0..=10_000.0).contains(&bp)
        || (percent * 100.0 - bp).abs() > 1e-6
    {
        return Err(ReleaseError::Invalid {
            field: "percent",
            reason: format!(
                "{percent} is not a share between 0.01 and 100 with at most two decimals"
            ),
        });
    }
    Ok(bp as u32)
}

/// Check an alias name: 1 to 64 characters of `a-z 0-9 . _ -`, starting with a letter, and not
/// something that reads as an index id or id prefix.
pub fn check_alias_name(name: &str) -> Result<()> {
    let refuse = |reason: &str| ReleaseError::Invalid {
        field: "alias",
        reason: format!("{name:?} is not a valid alias name: {reason}"),
    };
    if name.is_empty() || name.len() > 64 {
        return Err(refuse("must be 1 to 64 characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(refuse("must start with a lowercase letter"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
    {
        return Err(refuse("may hold only a-z, 0-9, '.', '_' and '-'"));
    }
    if name.starts_with("idx-") || name.starts_with("snap-") {
        return Err(refuse("must not start with idx- or snap-"));
    }
    if name.len() >= MIN_PREFIX_HEX && name.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(refuse("reads as an index id prefix"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::route;
    use quire_core::Arm;

    fn idx(n: u8) -> IndexId {
        format!("idx-{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    fn rev(revision: u64, state: AliasState) -> AliasRevision {
        AliasRevision {
            alias: "a".into(),
            revision,
            time: String::new(),
            actor: "t".into(),
            reason: "r".into(),
            action: "set".into(),
            state,
        }
    }

    fn history(changes: &[AliasChange]) -> Vec<AliasRevision> {
        let mut h = Vec::new();
        for (i, c) in changes.iter().enumerate() {
            let state = c.apply("a", &h).unwrap();
            h.push(rev(i as u64 + 1, state));
        }
        h
    }

    #[test]
    fn promote_and_rollback_follow_the_primary() {
        let h = history(&[
            AliasChange::Set(idx(1)),
            AliasChange::Canary(idx(2), 1000),
            AliasChange::Promote,
        ]);
        assert_eq!(h[2].state.primary, idx(2));
        assert_eq!(h[2].state.canary, None);
        let back = AliasChange::Rollback(None).apply("a", &h).unwrap();
        assert_eq!(back.primary, idx(1));
        let exact = AliasChange::Rollback(Some(2)).apply("a", &h).unwrap();
        assert_eq!(exact, h[1].state);
    }

    #[test]
    fn refusals_name_the_problem() {
        let h = history(&[AliasChange::Set(idx(1))]);
        for (change, needle) in [
            (AliasChange::Promote, "no canary"),
            (AliasChange::Rollback(None), "never had another primary"),
            (AliasChange::Rollback(Some(9)), "no revision 9"),
            (AliasChange::Canary(idx(2), 0), "outside 1..=10000"),
            (AliasChange::Canary(idx(1), 10), "already the primary"),
            (AliasChange::ClearShadow, "no shadow"),
        ] {
            let e = change.apply("a", &h).unwrap_err().to_string();
            assert!(e.contains(needle), "{change:?}: {e}");
        }
        let e = AliasChange::Promote
            .apply("a", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no alias"), "{e}");
    }

    #[test]
    fn canary_share_is_close_to_its_percentage_and_sticky() {
        let state = AliasState {
            primary: idx(1),
            canary: Some(Canary {
                index: idx(2),
                basis_points: 1000,
            }),
            shadow: None,
            policy: None,
            auto_rollback: None,
        };
        let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
        let canary = keys
            .iter()
            .filter(|k| route(&state, k).1 == Arm::Canary)
            .count();
        assert!(
            (900..=1100).contains(&canary),
            "canary share {canary}/10000"
        );
        for k in &keys {
            assert_eq!(route(&state, k), route(&state, k));
        }
    }

    #[test]
    fn an_auto_rollback_removes_only_the_canary_it_evaluated_and_policies_survive_rollbacks() {
        let policy: RollbackPolicy = "overlap<0.6".parse().unwrap();
        let h = history(&[
            AliasChange::Set(idx(1)),
            AliasChange::SetAutoRollback(Some(policy.clone())),
            AliasChange::Canary(idx(2), 1000),
        ]);
        let stale = AliasChange::AutoRollback {
            canary: idx(3),
            report: "cnr-x".into(),
        };
        let e = stale.apply("a", &h).unwrap_err().to_string();
        assert!(e.contains("no longer serves canary"), "{e}");
        let rollback = AliasChange::AutoRollback {
            canary: idx(2),
            report: "cnr-x".into(),
        };
        assert_eq!(rollback.action(), "canary.auto-rollback");
        let after = rollback.apply("a", &h).unwrap();
        assert_eq!((after.primary, after.canary), (idx(1), None));
        assert_eq!(after.auto_rollback.as_ref(), Some(&policy));
        let back = AliasChange::Rollback(Some(1)).apply("a", &h).unwrap();
        assert_eq!(
            back.auto_rollback,
            Some(policy),
            "a rollback keeps the policy"
        );
        let e = AliasChange::SetAutoRollback(None)
            .apply("a", &h[..1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no auto-rollback policy"), "{e}");
    }

    #[test]
    fn alias_names_are_checked() {
        for ok in ["handbook", "prod.search", "a", "docs-v2_x"] {
            check_alias_name(ok).unwrap();
        }
        for bad in [
            "",
            "Handbook",
            "9lives",
            "idx-abc",
            "a b",
            "a@1",
            "abcdef0123456789",
        ] {
            assert!(check_alias_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentages_become_basis_points_or_are_refused() {
        assert_eq!(percent_to_basis_points(10.0).unwrap(), 1000);
        assert_eq!(percent_to_basis_points(0.25).unwrap(), 25);
        assert_eq!(percent_to_basis_points(100.0).unwrap(), 10_000);
        for bad in [0.0, -1.0, 100.5, 0.001, 12.345, f64::NAN] {
            assert!(percent_to_basis_points(bad).is_err(), "{bad}");
        }
    }
}
