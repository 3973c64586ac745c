//! Conversions of the release and audit services' messages. Incoming requests are validated
//! into domain values; responses convert both ways so the remote client returns the same
//! types the local service does.

use quire_release::{
    AliasChangeRequest, AliasRevision, AliasState, AuditEvent, AuditVerification, Canary,
    DeletedPacks, DeletedUpload, Distribution, GatePolicy, GcReport, Pin, RollbackPolicy,
    ShadowReport,
};

use crate::convert::{InvalidField, invalid, parse};
use crate::pb;
use crate::pb::change_alias_request::Change;

/// An id field where empty means none.
fn parse_optional<T: std::str::FromStr>(
    field: &'static str,
    value: &str,
) -> Result<Option<T>, InvalidField>
where
    T::Err: std::fmt::Display,
{
    (!value.is_empty()).then(|| parse(field, value)).transpose()
}

/// A policy as text, parsed strictly.
fn rollback_policy(field: &'static str, text: &str) -> Result<RollbackPolicy, InvalidField> {
    text.parse()
        .map_err(|e| crate::convert::field_error(field, e))
}

/// An embedding cache namespace as GC names what it deleted: one segment of a store key
/// (whatever folder it found under `embed-cache/`, so a report of a deletion is never refused,
/// but never a path).
fn key_segment(field: &'static str, value: String) -> Result<String, InvalidField> {
    match quire_core::ids::check_key_segment(&value) {
        Ok(()) => Ok(value),
        Err(e) => Err(invalid(field, format!("{value:?}: {e}"))),
    }
}

/// A content digest: 64 lowercase hex characters.
fn hex64(field: &'static str, value: String) -> Result<String, InvalidField> {
    if !quire_core::ids::is_hex64(&value) {
        return Err(invalid(
            field,
            format!("{value:?} is not 64 lowercase hex characters"),
        ));
    }
    Ok(value)
}

fn non_empty(field: &'static str, value: String) -> Result<String, InvalidField> {
    if value.trim().is_empty() {
        return Err(invalid(field, "is empty"));
    }
    Ok(value)
}

/// A validated `ChangeAlias` request.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeAliasParams {
    /// The alias.
    pub alias: String,
    /// The change.
    pub change: AliasChangeRequest,
    /// Why.
    pub reason: String,
    /// Override a failing gate.
    pub force: bool,
}

impl TryFrom<pb::ChangeAliasRequest> for ChangeAliasParams {
    type Error = InvalidField;

    fn try_from(r: pb::ChangeAliasRequest) -> Result<Self, InvalidField> {
        let alias = non_empty("alias", r.alias)?;
        let reason = non_empty("reason", r.reason)?;
        let change = match r.change.ok_or_else(|| invalid("change", "is missing"))? {
            Change::Set(index) => AliasChangeRequest::Set(non_empty("set", index)?),
            Change::Canary(c) => {
                AliasChangeRequest::Canary(non_empty("canary.index", c.index)?, c.percent)
            }
            Change::ClearCanary(_) => AliasChangeRequest::ClearCanary,
            Change::Shadow(index) => AliasChangeRequest::Shadow(non_empty("shadow", index)?),
            Change::ClearShadow(_) => AliasChangeRequest::ClearShadow,
            Change::Promote(_) => AliasChangeRequest::Promote,
            Change::Rollback(r) => {
                AliasChangeRequest::Rollback(Some(r.to_revision).filter(|&n| n > 0))
            }
            Change::ClearGate(_) => AliasChangeRequest::ClearGate,
            Change::AutoRollback(text) => {
                AliasChangeRequest::AutoRollback(Some(rollback_policy("auto_rollback", &text)?))
            }
            Change::ClearAutoRollback(_) => AliasChangeRequest::AutoRollback(None),
        };
        Ok(Self {
            alias,
            change,
            reason,
            force: r.force,
        })
    }
}

/// The request a client sends for an alias change.
pub fn change_alias_request(
    alias: &str,
    change: &AliasChangeRequest,
    reason: &str,
    force: bool,
) -> pb::ChangeAliasRequest {
    let change = match change {
        AliasChangeRequest::Set(i) => Change::Set(i.clone()),
        AliasChangeRequest::Canary(i, percent) => Change::Canary(pb::SetCanary {
            index: i.clone(),
            percent: *percent,
        }),
        AliasChangeRequest::ClearCanary => Change::ClearCanary(pb::Empty {}),
        AliasChangeRequest::Shadow(i) => Change::Shadow(i.clone()),
        AliasChangeRequest::ClearShadow => Change::ClearShadow(pb::Empty {}),
        AliasChangeRequest::Promote => Change::Promote(pb::Empty {}),
        AliasChangeRequest::Rollback(to) => Change::Rollback(pb::Rollback {
            to_revision: to.unwrap_or(0),
        }),
        AliasChangeRequest::ClearGate => Change::ClearGate(pb::Empty {}),
        AliasChangeRequest::AutoRollback(Some(p)) => Change::AutoRollback(p.to_string()),
        AliasChangeRequest::AutoRollback(None) => Change::ClearAutoRollback(pb::Empty {}),
    };
    pb::ChangeAliasRequest {
        alias: alias.to_owned(),
        reason: reason.to_owned(),
        change: Some(change),
        force,
    }
}

impl From<AliasRevision> for pb::AliasRevision {
    fn from(r: AliasRevision) -> Self {
        Self {
            alias: r.alias,
            revision: r.revision,
            time: r.time,
            actor: r.actor,
            reason: r.reason,
            action: r.action,
            primary: r.state.primary.to_string(),
            canary: r.state.canary.map(|c| pb::Canary {
                index_id: c.index.to_string(),
                basis_points: c.basis_points,
            }),
            shadow: r.state.shadow.map(|s| s.to_string()).unwrap_or_default(),
            policy: r.state.policy.map(|p| pb::GatePolicy {
                eval_spec: p.eval_spec,
                mode: p.mode,
                min_ndcg10: p.min_ndcg10,
                max_regression: p.max_regression,
            }),
            auto_rollback: r
                .state
                .auto_rollback
                .map(|p| p.to_string())
                .unwrap_or_default(),
        }
    }
}

impl TryFrom<pb::AliasRevision> for AliasRevision {
    type Error = InvalidField;

    fn try_from(r: pb::AliasRevision) -> Result<Self, InvalidField> {
        Ok(Self {
            alias: r.alias,
            revision: r.revision,
            time: r.time,
            actor: r.actor,
            reason: r.reason,
            action: r.action,
            state: AliasState {
                primary: parse("primary", &r.primary)?,
                canary: r
                    .canary
                    .map(|c| {
                        Ok::<_, InvalidField>(Canary {
                            index: parse("canary.index_id", &c.index_id)?,
                            basis_points: c.basis_points,
                        })
                    })
                    .transpose()?,
                shadow: parse_optional("shadow", &r.shadow)?,
                policy: r.policy.map(|p| GatePolicy {
                    eval_spec: p.eval_spec,
                    mode: p.mode,
                    min_ndcg10: p.min_ndcg10,
                    max_regression: p.max_regression,
                }),
                auto_rollback: (!r.auto_rollback.is_empty())
                    .then(|| rollback_policy("auto_rollback", &r.auto_rollback))
                    .transpose()?,
            },
        })
    }
}

/// Revisions from a list response.
pub fn revisions(r: pb::AliasHistoryResponse) -> Result<Vec<AliasRevision>, InvalidField> {
    r.revisions.into_iter().map(TryInto::try_into).collect()
}

fn distribution_to_pb(d: Distribution) -> pb::Distribution {
    pb::Distribution {
        count: d.count,
        mean: d.mean,
        min: d.min,
        p50: d.p50,
        p90: d.p90,
        p99: d.p99,
        max: d.max,
    }
}

fn distribution(d: Option<pb::Distribution>) -> Distribution {
    let d = d.unwrap_or_default();
    Distribution {
        count: d.count,
        mean: d.mean,
        min: d.min,
        p50: d.p50,
        p90: d.p90,
        p99: d.p99,
        max: d.max,
    }
}

impl From<ShadowReport> for pb::ShadowReportResponse {
    fn from(r: ShadowReport) -> Self {
        Self {
            alias: r.alias,
            shadow_index: r.shadow_index.map(|s| s.to_string()).unwrap_or_default(),
            since: r.since,
            compared: r.compared,
            dropped: r.dropped,
            failed: r.failed,
            jaccard: Some(distribution_to_pb(r.jaccard)),
            rbo: Some(distribution_to_pb(r.rbo)),
            latency_delta_us: Some(distribution_to_pb(r.latency_delta_us)),
        }
    }
}

impl TryFrom<pb::ShadowReportResponse> for ShadowReport {
    type Error = InvalidField;

    fn try_from(r: pb::ShadowReportResponse) -> Result<Self, InvalidField> {
        Ok(Self {
            alias: r.alias,
            shadow_index: parse_optional("shadow_index", &r.shadow_index)?,
            since: r.since,
            compared: r.compared,
            dropped: r.dropped,
            failed: r.failed,
            jaccard: distribution(r.jaccard),
            rbo: distribution(r.rbo),
            latency_delta_us: distribution(r.latency_delta_us),
        })
    }
}

impl From<Pin> for pb::PinInfo {
    fn from(p: Pin) -> Self {
        Self {
            index_id: p.index_id.to_string(),
            holder: p.holder,
            created: p.created,
            expires: p.expires.unwrap_or_default(),
            actor: p.actor,
            reason: p.reason,
        }
    }
}

impl TryFrom<pb::PinInfo> for Pin {
    type Error = InvalidField;

    fn try_from(p: pb::PinInfo) -> Result<Self, InvalidField> {
        Ok(Self {
            index_id: parse("index_id", &p.index_id)?,
            holder: p.holder,
            created: p.created,
            expires: Some(p.expires).filter(|e| !e.is_empty()),
            actor: p.actor,
            reason: p.reason,
        })
    }
}

impl From<GcReport> for pb::GcResponse {
    fn from(r: GcReport) -> Self {
        Self {
            dry_run: r.dry_run,
            deleted_indexes: r.deleted_indexes.iter().map(ToString::to_string).collect(),
            deleted_snapshots: r
                .deleted_snapshots
                .iter()
                .map(ToString::to_string)
                .collect(),
            kept: r
                .kept
                .into_iter()
                .map(|(id, reasons)| pb::KeptIndex {
                    index_id: id.to_string(),
                    reasons,
                })
                .collect(),
            deleted_uploads: r
                .deleted_uploads
                .into_iter()
                .map(|u| pb::DeletedUpload {
                    index_id: u.index_id.to_string(),
                    content_digest: u.content_digest,
                    objects: u.objects,
                })
                .collect(),
            deleted_packs: r
                .deleted_packs
                .into_iter()
                .map(|p| pb::DeletedPacks {
                    namespace: p.namespace,
                    packs: p.packs,
                })
                .collect(),
        }
    }
}

impl TryFrom<pb::DeletedUpload> for DeletedUpload {
    type Error = InvalidField;

    fn try_from(u: pb::DeletedUpload) -> Result<Self, InvalidField> {
        Ok(Self {
            index_id: parse("deleted_uploads.index_id", &u.index_id)?,
            content_digest: hex64("deleted_uploads.content_digest", u.content_digest)?,
            objects: u.objects,
        })
    }
}

impl TryFrom<pb::DeletedPacks> for DeletedPacks {
    type Error = InvalidField;

    fn try_from(p: pb::DeletedPacks) -> Result<Self, InvalidField> {
        Ok(Self {
            namespace: key_segment("deleted_packs.namespace", p.namespace)?,
            packs: p.packs,
        })
    }
}

impl TryFrom<pb::GcResponse> for GcReport {
    type Error = InvalidField;

    fn try_from(r: pb::GcResponse) -> Result<Self, InvalidField> {
        Ok(Self {
            dry_run: r.dry_run,
            deleted_indexes: r
                .deleted_indexes
                .iter()
                .map(|s| parse("deleted_indexes", s))
                .collect::<Result<_, _>>()?,
            deleted_snapshots: r
                .deleted_snapshots
                .iter()
                .map(|s| parse("deleted_snapshots", s))
                .collect::<Result<_, _>>()?,
            kept: r
                .kept
                .into_iter()
                .map(|k| Ok((parse("kept.index_id", &k.index_id)?, k.reasons)))
                .collect::<Result<_, InvalidField>>()?,
            deleted_uploads: r
                .deleted_uploads
                .into_iter()
                .map(DeletedUpload::try_from)
                .collect::<Result<_, _>>()?,
            deleted_packs: r
                .deleted_packs
                .into_iter()
                .map(DeletedPacks::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl From<AuditEvent> for pb::AuditEvent {
    fn from(e: AuditEvent) -> Self {
        Self {
            seq: e.seq,
            time: e.time,
            actor: e.actor,
            action: e.action,
            target: e.target,
            before: e.before.to_string(),
            after: e.after.to_string(),
            reason: e.reason,
            evidence: e.evidence.to_string(),
            hash: e.hash,
        }
    }
}

impl TryFrom<pb::AuditEvent> for AuditEvent {
    type Error = InvalidField;

    fn try_from(e: pb::AuditEvent) -> Result<Self, InvalidField> {
        let json = |field: &'static str, text: &str| {
            serde_json::from_str(text).map_err(|err| invalid(field, err.to_string()))
        };
        Ok(Self {
            seq: e.seq,
            time: e.time,
            actor: e.actor,
            action: e.action,
            target: e.target,
            before: json("before", &e.before)?,
            after: json("after", &e.after)?,
            reason: e.reason,
            evidence: json("evidence", &e.evidence)?,
            hash: e.hash,
        })
    }
}

impl From<AuditVerification> for pb::VerifyLogResponse {
    fn from(v: AuditVerification) -> Self {
        Self {
            ok: v.ok,
            events: v.events,
            head_seq: v.head_seq,
            head_hash: v.head_hash,
            first_bad_seq: v.first_bad_seq.unwrap_or(0),
            problem: v.problem.unwrap_or_default(),
        }
    }
}

impl From<pb::VerifyLogResponse> for AuditVerification {
    fn from(v: pb::VerifyLogResponse) -> Self {
        Self {
            ok: v.ok,
            events: v.events,
            head_seq: v.head_seq,
            head_hash: v.head_hash,
            first_bad_seq: Some(v.first_bad_seq).filter(|&s| s > 0),
            problem: Some(v.problem).filter(|p| !p.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_requests_round_trip_and_are_validated() {
        for change in [
            AliasChangeRequest::Set("idx-abc".into()),
            AliasChangeRequest::Canary("idx-abc".into(), 12.5),
            AliasChangeRequest::ClearCanary,
            AliasChangeRequest::Shadow("idx-abc".into()),
            AliasChangeRequest::ClearShadow,
            AliasChangeRequest::Promote,
            AliasChangeRequest::Rollback(None),
            AliasChangeRequest::Rollback(Some(3)),
            AliasChangeRequest::ClearGate,
            AliasChangeRequest::AutoRollback(Some("overlap<0.6,empty>+5%".parse().unwrap())),
            AliasChangeRequest::AutoRollback(None),
        ] {
            let wire = change_alias_request("prod", &change, "why", false);
            let back = ChangeAliasParams::try_from(wire).unwrap();
            assert_eq!(back.change, change);
        }
        let mut no_reason = change_alias_request("prod", &AliasChangeRequest::Promote, "", true);
        assert_eq!(
            ChangeAliasParams::try_from(no_reason.clone())
                .unwrap_err()
                .field,
            "reason"
        );
        no_reason.reason = "r".into();
        no_reason.change = None;
        assert_eq!(
            ChangeAliasParams::try_from(no_reason).unwrap_err().field,
            "change"
        );
    }

    #[test]
    fn gc_reports_round_trip_with_uploads_and_packs_and_are_validated() {
        let index: quire_core::IndexId = format!("idx-{}", "a".repeat(64)).parse().unwrap();
        let report = GcReport {
            dry_run: true,
            deleted_indexes: vec![index.clone()],
            deleted_snapshots: vec![format!("snap-{}", "b".repeat(64)).parse().unwrap()],
            deleted_uploads: vec![DeletedUpload {
                index_id: index.clone(),
                content_digest: "c".repeat(64),
                objects: 7,
            }],
            deleted_packs: vec![DeletedPacks {
                namespace: "d".repeat(64),
                packs: 3,
            }],
            kept: [(index, vec!["pinned by eval".to_owned()])].into(),
        };
        let wire = pb::GcResponse::from(report.clone());
        assert_eq!(wire.deleted_uploads[0].objects, 7);
        assert_eq!(wire.deleted_packs[0].namespace, "d".repeat(64));
        assert_eq!(GcReport::try_from(wire.clone()).unwrap(), report);

        let mut bad = wire.clone();
        bad.deleted_uploads[0].content_digest = "C".repeat(64);
        let err = GcReport::try_from(bad).unwrap_err();
        assert_eq!(err.field, "deleted_uploads.content_digest", "{err:?}");
        let mut bad = wire.clone();
        bad.deleted_uploads[0].index_id = "idx-short".into();
        let err = GcReport::try_from(bad).unwrap_err();
        assert_eq!(err.field, "deleted_uploads.index_id", "{err:?}");
        // Whatever folder GC found under `embed-cache/` is reported as it is, but never a
        // path.
        let mut stray = wire.clone();
        stray.deleted_packs[0].namespace = "old-format_v1".into();
        assert!(GcReport::try_from(stray).is_ok());
        for namespace in ["../escape", "a/b", "..", ""] {
            let mut bad = wire.clone();
            bad.deleted_packs[0].namespace = namespace.into();
            let err = GcReport::try_from(bad).unwrap_err();
            assert_eq!(err.field, "deleted_packs.namespace", "{err:?}");
        }
    }
}
