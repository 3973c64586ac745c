//! Canary evaluation reports in the registry (audited, like evaluation reports), their
//! retention, and the rollback an alias's policy asks for, with the report as evidence.

use quire_release::{AliasChange, AliasRevision, AuditDraft, CanaryReport};
use serde_json::json;

use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Store a canary report with its audit event (`canary.report`).
    pub fn store_canary_report(&self, report: &CanaryReport) -> Result<()> {
        let draft = AuditDraft {
            actor: report.actor.clone(),
            action: "canary.report".into(),
            target: report.alias.clone(),
            after: json!({
                "report_id": report.report_id,
                "replayed": report.overall.replayed,
                "breaches": report.breaches.len(),
            }),
            evidence: json!({
                "revision": report.revision,
                "primary": report.primary,
                "candidate": report.candidate,
                "arm": report.arm,
            }),
            ..AuditDraft::default()
        };
        self.registry.put_canary_report(report, draft)?;
        Ok(())
    }

    /// Stored canary reports, oldest first; only `alias`'s when given.
    pub fn canary_reports(&self, alias: Option<&str>) -> Result<Vec<CanaryReport>> {
        self.registry.canary_reports(alias)
    }

    /// Delete canary reports made before `before_us` (microseconds since the epoch).
    pub fn prune_canary_reports(&self, before_us: u64) -> Result<u64> {
        self.require_write()?;
        self.registry.prune_canary_reports(before_us)
    }

    /// Roll back the canary `report` evaluated, as the alias's policy asks: a new revision
    /// without it, whose audit event names the report and the thresholds crossed. Refused when
    /// the alias serves another canary by now.
    pub fn auto_rollback(
        &self,
        alias: &str,
        report: &CanaryReport,
        actor: &str,
    ) -> Result<AliasRevision> {
        let change = AliasChange::AutoRollback {
            canary: report.candidate.clone(),
            report: report.report_id.clone(),
        };
        let reason = format!("auto-rollback: {}", report.breaches.join("; "));
        self.change_alias(alias, &change, actor, &reason)
    }
}
