//! Release aliases: a name that serves a primary index, optionally a canary (a share of
//! routing keys) and a shadow (queried in the background for comparison), with every change
//! kept as a numbered revision.
//!
//! The pure part ([`AliasChange::apply`], [`route`]) lives in quire-release and decides what a
//! change or a request does; the [`Store`] methods below commit changes to the registry with
//! their audit event.

use quire_core::IndexId;
use quire_release::gate::check_reports;
use serde_json::json;

pub use quire_release::alias::{
    AliasChange, AliasChangeRequest, AliasRevision, AliasState, Canary, check_alias_name,
    percent_to_basis_points,
};
pub use quire_release::routing::{BUCKETS, Resolved, Via, bucket, route};
use quire_release::{AuditDraft, GatePolicy};

use crate::error::{Result, StoreError};
use crate::registry::Reports;
use crate::store::Store;

/// Run the gate a change must pass, if any: a new primary on a gated alias (set, promote), or
/// a rebaseline (the primary must have a report under the new spec). Returns the evidence for
/// the audit event; a failing gate refuses unless `force`, which is recorded.
fn gate_evidence(
    reports: Reports<'_>,
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
            let outcome = check_reports(&reports()?, &p, &next.primary, &next.primary);
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
    match check_reports(&reports()?, policy, candidate, baseline) {
        Ok(evidence) => Ok(evidence),
        Err(why) if force => Ok(json!({ "forced": true, "refusal": why })),
        Err(why) => Err(StoreError::Gate {
            alias: alias.to_owned(),
            reason: why,
        }),
    }
}

/// The evidence an alias change's audit event carries: its revision, what the gate said, and for
/// an auto-rollback the canary report that crossed the policy.
fn change_evidence(
    change: &AliasChange,
    revision: u64,
    gate: serde_json::Value,
) -> serde_json::Value {
    let mut evidence = json!({ "revision": revision, "gate": gate });
    if let AliasChange::AutoRollback { report, .. } = change {
        evidence["report"] = json!(report);
    }
    evidence
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
            self.refuse_marked(index)?;
        }
        let _guard = self.release_lock();
        let result = self.registry.commit_alias(alias, &mut |history, reports| {
            let time = jiff::Timestamp::now().to_string();
            let revision = change.revise(alias, history, time, actor, reason)?;
            let evidence = gate_evidence(
                reports,
                alias,
                change,
                history.last(),
                &revision.state,
                force,
            )?;
            let before = history
                .last()
                .map(|r| json!(r.state))
                .unwrap_or(json!(null));
            let draft = AuditDraft {
                actor: actor.to_owned(),
                action: format!("alias.{}", change.action()),
                target: alias.to_owned(),
                before,
                after: json!(revision.state),
                reason: reason.to_owned(),
                evidence: change_evidence(change, revision.revision, evidence),
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
        let history = self.registry.alias_history(alias)?;
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
