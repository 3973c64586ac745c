//! Release aliases: a name that serves a primary index, optionally a canary (a share of
//! routing keys) and a shadow (queried in the background for comparison), with every change
//! kept as a numbered revision.
//!
//! The pure part ([`AliasChange::apply`], [`route`]) decides what a change or a request does;
//! the [`Store`] methods below commit changes to the registry with their audit event.

use std::collections::BTreeMap;
use std::sync::Arc;

use quire_core::IndexId;
use quire_index::Arm;
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::AuditDraft;
use crate::error::{Result, StoreError};
use crate::gate::{self, GatePolicy};
use crate::registry::{ALIAS_REVISIONS, db_err, decode, encode};
use crate::store::Store;

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
        }
    }

    /// The state after this change, given the alias's history (oldest first; empty when the
    /// alias does not exist yet).
    pub fn apply(&self, alias: &str, history: &[AliasRevision]) -> Result<AliasState> {
        let refuse = |reason: String| StoreError::Release {
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
                }),
                _ => Err(StoreError::NotFound {
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
        }
        // Rolling back to a revision restores what it served, never an older, laxer gate.
        if matches!(self, Self::Rollback(_)) {
            next.policy = current.state.policy.clone();
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
}

/// Percent (0 < p <= 100, at most two decimals) as basis points.
pub fn percent_to_basis_points(percent: f64) -> Result<u32> {
    let bp = (percent * 100.0).round();
    if !percent.is_finite()
        || !(1.0..=10_000.0).contains(&bp)
        || (percent * 100.0 - bp).abs() > 1e-6
    {
        return Err(StoreError::Invalid {
            field: "percent",
            reason: format!(
                "{percent} is not a share between 0.01 and 100 with at most two decimals"
            ),
        });
    }
    Ok(bp as u32)
}

/// The routing bucket of a key: the first 8 bytes of its blake3 hash, little-endian, modulo
/// [`BUCKETS`]. The same key always lands in the same bucket.
pub fn bucket(routing_key: &str) -> u64 {
    let hash = blake3::hash(routing_key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first) % BUCKETS
}

/// Which arm of `state` serves `routing_key`.
pub fn route<'a>(state: &'a AliasState, routing_key: &str) -> (&'a IndexId, Arm) {
    match &state.canary {
        Some(c) if bucket(routing_key) < u64::from(c.basis_points) => (&c.index, Arm::Canary),
        _ => (&state.primary, Arm::Primary),
    }
}

/// Check an alias name: 1 to 64 characters of `a-z 0-9 . _ -`, starting with a letter, and not
/// something that reads as an index id or id prefix.
pub fn check_alias_name(name: &str) -> Result<()> {
    let refuse = |reason: &str| StoreError::Invalid {
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
    if name.len() >= crate::MIN_PREFIX_HEX && name.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(refuse("reads as an index id prefix"));
    }
    Ok(())
}

/// Run the gate a change must pass, if any: a new primary on a gated alias (set, promote), or
/// a rebaseline (the primary must have a report under the new spec). Returns the evidence for
/// the audit event; a failing gate refuses unless `force`, which is recorded.
fn gate_evidence(
    tx: &redb::WriteTransaction,
    path: &std::path::Path,
    alias: &str,
    change: &AliasChange,
    previous: Option<&AliasRevision>,
    next: &AliasState,
    force: bool,
) -> Result<serde_json::Value> {
    let Some(previous) = previous else {
        return Ok(serde_json::Value::Null);
    };
    let (policy, candidate, baseline) = match change {
        AliasChange::Set(_) | AliasChange::Promote if next.primary != previous.state.primary => {
            match &previous.state.policy {
                Some(p) => (p, &next.primary, &previous.state.primary),
                None => return Ok(serde_json::Value::Null),
            }
        }
        AliasChange::Rebaseline(p) => {
            let p = GatePolicy {
                max_regression: None,
                min_ndcg10: None,
                ..p.clone()
            };
            let outcome = gate::check(tx, path, &p, &next.primary, &next.primary)?;
            return match outcome {
                Ok(evidence) => Ok(evidence),
                Err(why) => Err(StoreError::Release {
                    alias: alias.to_owned(),
                    reason: format!("cannot rebaseline: {why}"),
                }),
            };
        }
        _ => return Ok(serde_json::Value::Null),
    };
    match gate::check(tx, path, policy, candidate, baseline)? {
        Ok(evidence) => Ok(evidence),
        Err(why) if force => Ok(json!({ "forced": true, "refusal": why })),
        Err(why) => Err(StoreError::Gate {
            alias: alias.to_owned(),
            reason: why,
        }),
    }
}

/// A parsed query target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The index that answers.
    pub index: IndexId,
    /// The alias, revision and arm it was reached through, when it was.
    pub via: Option<Via>,
}

/// How an alias routed a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// The alias.
    pub alias: String,
    /// The revision that served.
    pub revision: u64,
    /// The arm that served.
    pub arm: Arm,
    /// The revision's shadow, to be queried in the background.
    pub shadow: Option<IndexId>,
}

/// The current revision of every alias.
pub(crate) type AliasTable = Arc<BTreeMap<String, AliasRevision>>;

/// Every revision in the registry, grouped per alias, oldest first.
pub(crate) fn load_all(store: &Store) -> Result<BTreeMap<String, Vec<AliasRevision>>> {
    let path = store.registry.path().to_path_buf();
    let out = store.registry.read(|tx| {
        let err = db_err(&path);
        let table = tx.open_table(ALIAS_REVISIONS).map_err(|e| err(e.into()))?;
        let mut out: BTreeMap<String, Vec<AliasRevision>> = BTreeMap::new();
        for entry in table.iter().map_err(|e| err(e.into()))? {
            let (_, value) = entry.map_err(|e| err(e.into()))?;
            let revision: AliasRevision = decode(&path, value.value())?;
            out.entry(revision.alias.clone())
                .or_default()
                .push(revision);
        }
        Ok(out)
    })?;
    Ok(out.unwrap_or_default())
}

fn history_in(
    table: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    path: &std::path::Path,
    alias: &str,
) -> Result<Vec<AliasRevision>> {
    let err = db_err(path);
    let mut out = Vec::new();
    for entry in table
        .range((alias, 0)..=(alias, u64::MAX))
        .map_err(|e| err(e.into()))?
    {
        let (_, value) = entry.map_err(|e| err(e.into()))?;
        out.push(decode(path, value.value())?);
    }
    Ok(out)
}

impl Store {
    /// Apply `change` to `alias` as revision `r + 1`, with its audit event, in one transaction.
    /// A gated alias refuses a new primary that fails its gate.
    pub fn change_alias(
        &self,
        alias: &str,
        change: &AliasChange,
        actor: &str,
        reason: &str,
    ) -> Result<AliasRevision> {
        self.change_alias_with(alias, change, actor, reason, false)
    }

    /// [`Store::change_alias`]; with `force`, a failing gate is overridden and the override
    /// recorded in the audit event (callers must allow `force` to admins only).
    pub fn change_alias_with(
        &self,
        alias: &str,
        change: &AliasChange,
        actor: &str,
        reason: &str,
        force: bool,
    ) -> Result<AliasRevision> {
        check_alias_name(alias)?;
        if reason.trim().is_empty() {
            return Err(StoreError::Invalid {
                field: "reason",
                reason: format!("a change to alias {alias:?} needs a reason"),
            });
        }
        if let AliasChange::Set(index)
        | AliasChange::Canary(index, _)
        | AliasChange::Shadow(index) = change
        {
            self.manifest(index)?;
        }
        let _guard = self.release_lock();
        let path = self.registry.path().to_path_buf();
        let result = self.registry.write(|tx| {
            let err = db_err(&path);
            let mut table = tx.open_table(ALIAS_REVISIONS).map_err(|e| err(e.into()))?;
            let history = history_in(&table, &path, alias)?;
            let state = change.apply(alias, &history)?;
            let evidence = gate_evidence(tx, &path, alias, change, history.last(), &state, force)?;
            let before = history
                .last()
                .map(|r| json!(r.state))
                .unwrap_or(json!(null));
            let revision = AliasRevision {
                alias: alias.to_owned(),
                revision: history.last().map_or(1, |r| r.revision + 1),
                time: jiff::Timestamp::now().to_string(),
                actor: actor.to_owned(),
                reason: reason.to_owned(),
                action: change.action().to_owned(),
                state,
            };
            table
                .insert((alias, revision.revision), encode(&revision).as_slice())
                .map_err(|e| err(e.into()))?;
            let draft = AuditDraft {
                actor: actor.to_owned(),
                action: format!("alias.{}", change.action()),
                target: alias.to_owned(),
                before,
                after: json!(revision.state),
                reason: reason.to_owned(),
                evidence: json!({ "revision": revision.revision, "gate": evidence }),
            };
            Ok((revision, draft))
        });
        let revision = match result {
            Ok((revision, _)) => revision,
            Err(StoreError::Gate { alias, reason: why }) => {
                // The refusal itself is evidence: record who tried what and why it failed.
                self.audit(AuditDraft {
                    actor: actor.to_owned(),
                    action: format!("alias.{}.refused", change.action()),
                    target: alias.clone(),
                    reason: reason.to_owned(),
                    evidence: json!({ "gate": why }),
                    ..AuditDraft::default()
                })?;
                return Err(StoreError::Gate { alias, reason: why });
            }
            Err(e) => return Err(e),
        };
        self.publish_alias(revision.clone());
        Ok(revision)
    }

    /// The current revision of `alias`.
    pub fn alias(&self, alias: &str) -> Result<AliasRevision> {
        self.current_aliases()
            .get(alias)
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                kind: "alias",
                id: alias.to_owned(),
            })
    }

    /// Every revision of `alias`, oldest first.
    pub fn alias_history(&self, alias: &str) -> Result<Vec<AliasRevision>> {
        let path = self.registry.path().to_path_buf();
        let history = self
            .registry
            .read(|tx| {
                let err = db_err(&path);
                let table = tx.open_table(ALIAS_REVISIONS).map_err(|e| err(e.into()))?;
                history_in(&table, &path, alias)
            })?
            .unwrap_or_default();
        if history.is_empty() {
            return Err(StoreError::NotFound {
                kind: "alias",
                id: alias.to_owned(),
            });
        }
        Ok(history)
    }

    /// The current revision of every alias, by name.
    pub fn aliases(&self) -> Vec<AliasRevision> {
        self.current_aliases().values().cloned().collect()
    }

    /// Resolve a target to one index without routing: an alias (or `NAME@REVISION`) gives its
    /// primary; an index id or unique prefix gives that index.
    pub fn resolve_primary(&self, target: &str) -> Result<IndexId> {
        let resolved = self.resolve_target(target, "")?;
        let Some(via) = resolved.via else {
            return Ok(resolved.index);
        };
        let primary = if target.contains('@') {
            self.alias_history(&via.alias)?
                .into_iter()
                .find(|r| r.revision == via.revision)
                .map(|r| r.state.primary)
        } else {
            self.current_aliases()
                .get(&via.alias)
                .map(|r| r.state.primary.clone())
        };
        primary.ok_or(StoreError::NotFound {
            kind: "alias",
            id: via.alias,
        })
    }

    /// Resolve a query target: `NAME`, `NAME@REVISION`, an index id or a unique id prefix.
    /// Through an alias, `routing_key` picks the arm.
    pub fn resolve_target(&self, target: &str, routing_key: &str) -> Result<Resolved> {
        let (name, pinned_revision) = match target.split_once('@') {
            Some((name, rev)) => {
                let rev = rev.parse::<u64>().map_err(|_| StoreError::Invalid {
                    field: "target",
                    reason: format!("{rev:?} in {target:?} is not a revision number"),
                })?;
                (name, Some(rev))
            }
            None => (target, None),
        };
        let revision = match pinned_revision {
            None => match self.current_aliases().get(name) {
                Some(r) => r.clone(),
                None => {
                    return Ok(Resolved {
                        index: self.resolve_index(target)?,
                        via: None,
                    });
                }
            },
            Some(rev) => self
                .alias_history(name)?
                .into_iter()
                .find(|r| r.revision == rev)
                .ok_or_else(|| StoreError::Release {
                    alias: name.to_owned(),
                    reason: format!("has no revision {rev}"),
                })?,
        };
        let (index, arm) = route(&revision.state, routing_key);
        Ok(Resolved {
            index: index.clone(),
            via: Some(Via {
                alias: name.to_owned(),
                revision: revision.revision,
                arm,
                shadow: revision.state.shadow.clone(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
