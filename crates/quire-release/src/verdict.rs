//! What a canary evaluation ended in: its report, and the rollback its policy made.

use serde::Serialize;

use crate::alias::AliasRevision;
use crate::canary::CanaryReport;

/// A stored report and what the policy did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CanaryOutcome {
    /// The report, as stored.
    pub report: CanaryReport,
    /// The revision that rolled the canary back, when the policy did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<AliasRevision>,
}
