//! Outcomes: what a RAG application says became of an answer (feedback on a request id), with
//! what the request cost, and the per-arm, per-intent report made of them: success rate, CPU
//! milliseconds per successful query, latency.

use std::collections::BTreeMap;

use quire_core::IndexId;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::sampling::{Intent, NO_INTENT, check_label};

/// A caller's label on its feedback (`wrong-policy`, `thumbs-down`): the same bounds as an
/// intent label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FeedbackLabel(String);

impl FeedbackLabel {
    /// Check `label`.
    pub fn new(label: &str) -> Result<Self> {
        check_label("label", label).map(Self)
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FeedbackLabel {
    type Error = crate::error::ReleaseError;

    fn try_from(value: String) -> Result<Self> {
        Self::new(&value)
    }
}

impl From<FeedbackLabel> for String {
    fn from(label: FeedbackLabel) -> Self {
        label.0
    }
}

/// CPU microseconds a request cost per step, on the threads that ran each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuMicros {
    /// Embedding the query.
    pub embed: u64,
    /// BM25.
    pub bm25: u64,
    /// Vector search.
    pub vector: u64,
    /// Fusion and hit assembly.
    pub fusion: u64,
    /// The shadow query run for it, if any finished before the feedback came.
    pub shadow: u64,
    /// The whole request: the query's threads and the shadow.
    pub total: u64,
}

/// One feedback on an answered request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    /// The request.
    pub request_id: String,
    /// When the feedback came (RFC 3339).
    pub time: String,
    /// The same instant in microseconds since the Unix epoch.
    pub time_us: u64,
    /// The alias the request went to.
    pub alias: String,
    /// The revision that served it.
    pub revision: u64,
    /// `primary` or `canary`.
    pub arm: String,
    /// The index that answered.
    pub index_id: IndexId,
    /// The request's intent, if it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    /// Whether the application counts the answer a success.
    pub success: bool,
    /// The application's label, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<FeedbackLabel>,
    /// The request's latency in the server, microseconds.
    pub latency_us: u64,
    /// Its CPU cost.
    pub cpu_us: CpuMicros,
}

/// Where a feedback was counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackReceipt {
    /// The request.
    pub request_id: String,
    /// The alias it went to.
    pub alias: String,
    /// The arm that answered it.
    pub arm: String,
    /// Its intent, if it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    /// The feedback.
    pub success: bool,
}

impl From<FeedbackRecord> for FeedbackReceipt {
    fn from(r: FeedbackRecord) -> Self {
        Self {
            request_id: r.request_id,
            alias: r.alias,
            arm: r.arm,
            intent: r.intent,
            success: r.success,
        }
    }
}

/// One arm's outcomes for one intent (or overall).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRow {
    /// The intent label, `(none)`, or `overall`.
    pub intent: String,
    /// `primary` or `canary`.
    pub arm: String,
    /// Requests with feedback.
    pub feedback: u64,
    /// Of which successes.
    pub successes: u64,
    /// `successes / feedback`.
    pub success_rate: f64,
    /// CPU milliseconds spent per successful query: all CPU of the requests with feedback
    /// divided by the successes (the cost of failures is carried by the successes).
    pub cpu_ms_per_success: f64,
    /// Median latency of the requests with feedback, microseconds.
    pub latency_p50_us: u64,
    /// Their 99th percentile.
    pub latency_p99_us: u64,
}

/// `quire alias report`: an alias's arms side by side, overall and per intent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AliasReport {
    /// The alias.
    pub alias: String,
    /// Feedback of the last this-many seconds.
    pub since_secs: u64,
    /// Rows by (intent, arm): `overall` first, then intents in order.
    pub rows: Vec<OutcomeRow>,
}

/// The latency at quantile `q` of sorted `values`.
fn at(values: &[u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values[((values.len() - 1) as f64 * q).round() as usize]
}

fn row(intent: &str, arm: &str, records: &[&FeedbackRecord]) -> OutcomeRow {
    let feedback = records.len() as u64;
    let successes = records.iter().filter(|r| r.success).count() as u64;
    let cpu_us: u64 = records.iter().map(|r| r.cpu_us.total).sum();
    let mut latency: Vec<u64> = records.iter().map(|r| r.latency_us).collect();
    latency.sort_unstable();
    OutcomeRow {
        intent: intent.to_owned(),
        arm: arm.to_owned(),
        feedback,
        successes,
        success_rate: successes as f64 / feedback.max(1) as f64,
        cpu_ms_per_success: if successes == 0 {
            0.0
        } else {
            cpu_us as f64 / 1000.0 / successes as f64
        },
        latency_p50_us: at(&latency, 0.5),
        latency_p99_us: at(&latency, 0.99),
    }
}

impl AliasReport {
    /// The report of `alias` over `records` (feedback of the last `since_secs` seconds).
    pub fn of(alias: &str, since_secs: u64, records: &[FeedbackRecord]) -> Self {
        let mut groups: BTreeMap<(String, String), Vec<&FeedbackRecord>> = BTreeMap::new();
        for r in records.iter().filter(|r| r.alias == alias) {
            let intent = r.intent.as_ref().map_or(NO_INTENT, Intent::as_str);
            groups
                .entry(("overall".to_owned(), r.arm.clone()))
                .or_default()
                .push(r);
            groups
                .entry((intent.to_owned(), r.arm.clone()))
                .or_default()
                .push(r);
        }
        let overall = groups.iter().filter(|((i, _), _)| i == "overall");
        let intents = groups.iter().filter(|((i, _), _)| i != "overall");
        Self {
            alias: alias.to_owned(),
            since_secs,
            rows: overall
                .chain(intents)
                .map(|((intent, arm), records)| row(intent, arm, records))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(arm: &str, intent: &str, success: bool, cpu: u64) -> FeedbackRecord {
        FeedbackRecord {
            request_id: format!("rq-{arm}-{intent}-{cpu}"),
            time: String::new(),
            time_us: 0,
            alias: "prod".into(),
            revision: 2,
            arm: arm.into(),
            index_id: format!("idx-{}", "1".repeat(64)).parse().unwrap(),
            intent: Some(Intent::new(intent).unwrap()),
            success,
            label: None,
            latency_us: cpu * 2,
            cpu_us: CpuMicros {
                total: cpu,
                ..CpuMicros::default()
            },
        }
    }

    #[test]
    fn the_report_puts_arms_side_by_side_and_charges_failures_to_successes() {
        let records = [
            record("primary", "hr", true, 1000),
            record("primary", "hr", true, 3000),
            record("canary", "hr", true, 2000),
            record("canary", "hr", false, 2000),
            record("canary", "eng", true, 500),
        ];
        let report = AliasReport::of("prod", 3600, &records);
        let rows: Vec<(&str, &str, u64, f64, f64)> = report
            .rows
            .iter()
            .map(|r| {
                let key = (r.intent.as_str(), r.arm.as_str());
                (
                    key.0,
                    key.1,
                    r.feedback,
                    r.success_rate,
                    r.cpu_ms_per_success,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("overall", "canary", 3, 2.0 / 3.0, 2.25),
                ("overall", "primary", 2, 1.0, 2.0),
                ("eng", "canary", 1, 1.0, 0.5),
                ("hr", "canary", 2, 0.5, 4.0),
                ("hr", "primary", 2, 1.0, 2.0),
            ]
        );
        assert_eq!(report.rows[4].latency_p99_us, 6000);
        assert!(FeedbackLabel::new("thumbs down").is_err());
    }
}
