//! Conversions of the canary service's messages: sampled requests and canary evaluations.

use quire_release::CanaryOutcome;
use quire_release::canary::{CanaryEvalRequest, CanaryReport, CandidateArm};
use quire_release::sampling::{SampleListing, SampleRecord, SampledQuery, StepMicros};

use crate::convert::{InvalidField, field_error, intent_from_pb, invalid, parse};
use crate::pb;
use crate::pb::sample::Query;
use quire_release::outcome::{AliasReport, FeedbackReceipt, OutcomeRow};

/// A duration such as `1h` (at most a year), where empty means none.
pub(crate) fn since_from_pb(field: &'static str, value: &str) -> Result<Option<u64>, InvalidField> {
    if value.is_empty() {
        return Ok(None);
    }
    let secs = quire_core::spec::parse_duration_secs(value)
        .map_err(|e| invalid(field, format!("{value:?}: {e}")))?;
    if secs > 366 * 86_400 {
        return Err(invalid(field, format!("{value:?} is longer than 366d")));
    }
    Ok(Some(secs))
}

impl TryFrom<pb::ListSamplesRequest> for SampleListing {
    type Error = InvalidField;

    fn try_from(r: pb::ListSamplesRequest) -> Result<Self, InvalidField> {
        let alias = Some(r.alias).filter(|a| !a.is_empty());
        let intent = intent_from_pb("intent", &r.intent)?;
        let since = since_from_pb("since", &r.since)?;
        SampleListing::new(alias, intent, since, r.limit as usize)
            .map_err(|e| field_error("limit", e))
    }
}

/// The request a client sends for `listing` (`since` as written, e.g. `1h`).
pub fn list_samples_request(listing: &SampleListing) -> pb::ListSamplesRequest {
    pb::ListSamplesRequest {
        alias: listing.alias.clone().unwrap_or_default(),
        intent: listing.intent.clone().map(String::from).unwrap_or_default(),
        since: listing
            .since_secs
            .map(|s| format!("{s}s"))
            .unwrap_or_default(),
        limit: u32::try_from(listing.limit).unwrap_or(u32::MAX),
    }
}

fn mode_to_pb(mode: &str) -> i32 {
    (match mode {
        "bm25" => pb::Mode::Bm25,
        "vector" => pb::Mode::Vector,
        _ => pb::Mode::Hybrid,
    }) as i32
}

fn mode_name(mode: i32) -> Result<String, InvalidField> {
    Ok(crate::convert::mode_from_pb(mode)?.as_str().to_owned())
}

impl From<SampleRecord> for pb::Sample {
    fn from(s: SampleRecord) -> Self {
        let t = s.timings_us;
        Self {
            request_id: s.request_id,
            time: s.time,
            time_us: s.time_us,
            alias: s.alias,
            revision: s.revision,
            arm: s.arm,
            index_id: s.index_id.to_string(),
            intent: s.intent.map(String::from).unwrap_or_default(),
            user: s.user.unwrap_or_default(),
            groups: s.groups,
            k: s.k,
            mode: mode_to_pb(&s.mode),
            timings: Some(pb::Timings {
                embed_us: t.embed,
                bm25_us: t.bm25,
                vector_us: t.vector,
                fusion_us: t.fusion,
                total_us: t.total,
            }),
            chunk_ids: s.chunk_ids,
            doc_ids: s.doc_ids,
            query: Some(match s.query {
                SampledQuery::Text(text) => Query::QueryText(text),
                SampledQuery::Blake3(hash) => Query::QueryBlake3(hash),
            }),
        }
    }
}

impl TryFrom<pb::Sample> for SampleRecord {
    type Error = InvalidField;

    fn try_from(s: pb::Sample) -> Result<Self, InvalidField> {
        let t = s.timings.unwrap_or_default();
        Ok(Self {
            request_id: s.request_id,
            time: s.time,
            time_us: s.time_us,
            alias: s.alias,
            revision: s.revision,
            arm: s.arm,
            index_id: parse("index_id", &s.index_id)?,
            intent: intent_from_pb("intent", &s.intent)?,
            user: Some(s.user).filter(|u| !u.is_empty()),
            groups: s.groups,
            k: s.k,
            mode: mode_name(s.mode)?,
            timings_us: StepMicros {
                embed: t.embed_us,
                bm25: t.bm25_us,
                vector: t.vector_us,
                fusion: t.fusion_us,
                total: t.total_us,
            },
            chunk_ids: s.chunk_ids,
            doc_ids: s.doc_ids,
            query: match s.query.ok_or_else(|| invalid("query", "is missing"))? {
                Query::QueryText(text) => SampledQuery::Text(text),
                Query::QueryBlake3(hash) => SampledQuery::Blake3(hash),
            },
        })
    }
}

impl TryFrom<pb::EvaluateCanaryRequest> for (String, CanaryEvalRequest) {
    type Error = InvalidField;

    fn try_from(r: pb::EvaluateCanaryRequest) -> Result<Self, InvalidField> {
        if r.alias.trim().is_empty() {
            return Err(invalid("alias", "is empty"));
        }
        let window = since_from_pb("window", &r.window)?.unwrap_or(3600);
        let arm: CandidateArm = r.arm.parse().map_err(|e| field_error("arm", e))?;
        let request = CanaryEvalRequest::new(window, r.per_intent as usize, arm)
            .map_err(|e| field_error("per_intent", e))?;
        Ok((r.alias, request))
    }
}

/// The request a client sends to evaluate `alias`'s canary.
pub fn evaluate_canary_request(alias: &str, r: &CanaryEvalRequest) -> pb::EvaluateCanaryRequest {
    pb::EvaluateCanaryRequest {
        alias: alias.to_owned(),
        window: format!("{}s", r.window_secs),
        per_intent: u32::try_from(r.per_intent).unwrap_or(u32::MAX),
        arm: r.arm.as_str().to_owned(),
    }
}

impl From<CanaryReport> for pb::CanaryReport {
    fn from(r: CanaryReport) -> Self {
        Self {
            report_json: serde_json::to_string(&r)
                .expect("a canary report serialises: plain structs, strings, numbers"),
            report_id: r.report_id,
            alias: r.alias,
            created: r.created,
        }
    }
}

impl TryFrom<pb::CanaryReport> for CanaryReport {
    type Error = InvalidField;

    fn try_from(r: pb::CanaryReport) -> Result<Self, InvalidField> {
        serde_json::from_str(&r.report_json).map_err(|e| invalid("report_json", e.to_string()))
    }
}

impl From<CanaryOutcome> for pb::CanaryEvaluation {
    fn from(o: CanaryOutcome) -> Self {
        Self {
            report: Some(o.report.into()),
            rolled_back: o.rolled_back.map(Into::into),
        }
    }
}

impl TryFrom<pb::CanaryEvaluation> for CanaryOutcome {
    type Error = InvalidField;

    fn try_from(e: pb::CanaryEvaluation) -> Result<Self, InvalidField> {
        Ok(Self {
            report: e
                .report
                .ok_or_else(|| invalid("report", "is missing"))?
                .try_into()?,
            rolled_back: e.rolled_back.map(TryInto::try_into).transpose()?,
        })
    }
}

fn row_to_pb(row: OutcomeRow) -> pb::OutcomeRow {
    pb::OutcomeRow {
        intent: row.intent,
        arm: row.arm,
        feedback: row.feedback,
        successes: row.successes,
        success_rate: row.success_rate,
        cpu_ms_per_success: row.cpu_ms_per_success,
        latency_p50_us: row.latency_p50_us,
        latency_p99_us: row.latency_p99_us,
    }
}

fn row_from_pb(row: pb::OutcomeRow) -> OutcomeRow {
    OutcomeRow {
        intent: row.intent,
        arm: row.arm,
        feedback: row.feedback,
        successes: row.successes,
        success_rate: row.success_rate,
        cpu_ms_per_success: row.cpu_ms_per_success,
        latency_p50_us: row.latency_p50_us,
        latency_p99_us: row.latency_p99_us,
    }
}

impl From<AliasReport> for pb::AliasReportResponse {
    fn from(r: AliasReport) -> Self {
        Self {
            alias: r.alias,
            since_secs: r.since_secs,
            rows: r.rows.into_iter().map(row_to_pb).collect(),
        }
    }
}

impl From<pb::AliasReportResponse> for AliasReport {
    fn from(r: pb::AliasReportResponse) -> Self {
        Self {
            alias: r.alias,
            since_secs: r.since_secs,
            rows: r.rows.into_iter().map(row_from_pb).collect(),
        }
    }
}

/// The `since` of an alias report request: a duration, empty meaning an hour.
pub fn report_since(value: &str) -> Result<u64, InvalidField> {
    Ok(since_from_pb("since", value)?.unwrap_or(3600))
}

/// The wire form of a feedback receipt.
pub fn feedback_response(r: FeedbackReceipt) -> pb::FeedbackResponse {
    pb::FeedbackResponse {
        alias: r.alias,
        arm: r.arm,
        intent: r.intent.map(String::from).unwrap_or_default(),
    }
}

/// A feedback receipt from the wire, for `request_id` and `success` as sent.
pub fn feedback_receipt(
    request_id: &str,
    success: bool,
    r: pb::FeedbackResponse,
) -> Result<FeedbackReceipt, InvalidField> {
    Ok(FeedbackReceipt {
        request_id: request_id.to_owned(),
        alias: r.alias,
        arm: r.arm,
        intent: intent_from_pb("intent", &r.intent)?,
        success,
    })
}
