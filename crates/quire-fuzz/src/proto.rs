//! The wire conversions' harness: the first byte picks a message, the rest is decoded with
//! prost as the server (requests) or the remote client (responses) decodes it, and a message
//! that decodes is validated by its `TryFrom` into the domain type. Both may refuse; neither
//! may panic.

use prost::Message;
use quire_core::{IndexInfo, IndexSummary, RebuildCheck, Response, SnapshotInfo, VerifyReport};
use quire_proto::convert::RetrieveParams;
use quire_proto::eval::EvaluateParams;
use quire_proto::pb;
use quire_proto::release::ChangeAliasParams;
use quire_release::canary::{CanaryEvalRequest, CanaryReport};
use quire_release::sampling::{SampleListing, SampleRecord};
use quire_release::{
    AliasRevision, AuditEvent, CanaryOutcome, GcReport, Pin, ReportRecord, ShadowReport,
};

/// Decode `bytes` as `M` and convert it to `T`.
fn convert<M, T>(bytes: &[u8])
where
    M: Message + Default,
    T: TryFrom<M>,
{
    if let Ok(message) = M::decode(bytes) {
        let _ = T::try_from(message);
    }
}

/// The messages by the first byte's value (modulo their count), with their names.
pub const MESSAGES: [(&str, crate::Harness); 21] = [
    // Requests, validated by the server.
    (
        "RetrieveRequest",
        convert::<pb::RetrieveRequest, RetrieveParams>,
    ),
    (
        "EvaluateRequest",
        convert::<pb::EvaluateRequest, EvaluateParams>,
    ),
    (
        "ChangeAliasRequest",
        convert::<pb::ChangeAliasRequest, ChangeAliasParams>,
    ),
    (
        "EvaluateCanaryRequest",
        convert::<pb::EvaluateCanaryRequest, (String, CanaryEvalRequest)>,
    ),
    (
        "ListSamplesRequest",
        convert::<pb::ListSamplesRequest, SampleListing>,
    ),
    // Responses, validated by the remote client.
    (
        "RetrieveResponse",
        convert::<pb::RetrieveResponse, Response>,
    ),
    ("Snapshot", convert::<pb::Snapshot, SnapshotInfo>),
    ("IndexSummary", convert::<pb::IndexSummary, IndexSummary>),
    ("IndexManifest", convert::<pb::IndexManifest, IndexInfo>),
    (
        "VerifyIndexResponse",
        convert::<pb::VerifyIndexResponse, VerifyReport>,
    ),
    (
        "RebuildCheckResponse",
        convert::<pb::RebuildCheckResponse, RebuildCheck>,
    ),
    ("EvalReport", convert::<pb::EvalReport, ReportRecord>),
    ("AliasRevision", convert::<pb::AliasRevision, AliasRevision>),
    ("AliasHistoryResponse", |bytes| {
        if let Ok(m) = pb::AliasHistoryResponse::decode(bytes) {
            let _ = quire_proto::release::revisions(m);
        }
    }),
    (
        "ShadowReportResponse",
        convert::<pb::ShadowReportResponse, ShadowReport>,
    ),
    ("PinInfo", convert::<pb::PinInfo, Pin>),
    ("GcResponse", convert::<pb::GcResponse, GcReport>),
    ("AuditEvent", convert::<pb::AuditEvent, AuditEvent>),
    ("Sample", convert::<pb::Sample, SampleRecord>),
    ("CanaryReport", convert::<pb::CanaryReport, CanaryReport>),
    (
        "CanaryEvaluation",
        convert::<pb::CanaryEvaluation, CanaryOutcome>,
    ),
];

/// One wire message: `data[0]` picks it from [`MESSAGES`], `data[1..]` is its encoding.
pub fn proto(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    (MESSAGES[usize::from(pick) % MESSAGES.len()].1)(bytes);
}
