//! Conversions between wire messages and domain types. Incoming messages are validated here:
//! a `TryFrom` either yields a well-formed domain value or names the offending field.

use std::collections::BTreeMap;

use quire_core::spec::FusionMethod;
use quire_core::{
    Arm, CorpusFormat, Hit, IndexId, IndexInfo, IndexSummary, Lineage, Manifest, Mode, Query,
    Reader, RebuildCheck, Response, RetrieverHit, SnapshotId, SnapshotInfo, Timings, Verification,
    VerifyReport,
};

use crate::pb;
use quire_release::{Intent, ReleaseError};

/// A wire message that does not make sense.
#[derive(Debug, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct InvalidField {
    /// The field, e.g. `principal.groups`.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> InvalidField {
    InvalidField {
        field,
        reason: reason.into(),
    }
}

pub(crate) fn parse<T: std::str::FromStr>(
    field: &'static str,
    value: &str,
) -> Result<T, InvalidField>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e: T::Err| invalid(field, e.to_string()))
}

/// A release error about one field as the wire's error.
pub(crate) fn field_error(field: &'static str, e: ReleaseError) -> InvalidField {
    match e {
        ReleaseError::Invalid { reason, .. } => invalid(field, reason),
        other => invalid(field, other.to_string()),
    }
}

/// An intent field where empty means none.
pub(crate) fn intent_from_pb(
    field: &'static str,
    value: &str,
) -> Result<Option<Intent>, InvalidField> {
    (!value.is_empty())
        .then(|| Intent::new(value))
        .transpose()
        .map_err(|e| field_error(field, e))
}

/// The most hits one request may ask for, whatever the server's own limit.
pub const MAX_K: u32 = 1000;

/// A validated `Retrieve` request.
#[derive(Clone, Debug)]
pub struct RetrieveParams {
    /// Index id, prefix or name.
    pub target: String,
    /// The query.
    pub query: Query,
    /// Canary routing key (empty: none).
    pub routing_key: String,
    /// Whether to return per-retriever ranks and scores.
    pub explain: bool,
    /// The caller's intent label, if any.
    pub intent: Option<Intent>,
}

impl TryFrom<pb::RetrieveRequest> for RetrieveParams {
    type Error = InvalidField;

    fn try_from(r: pb::RetrieveRequest) -> Result<Self, InvalidField> {
        if r.target.trim().is_empty() {
            return Err(invalid("target", "is empty"));
        }
        if r.query.trim().is_empty() {
            return Err(invalid("query", "is empty"));
        }
        let reader = reader_from_pb(r.principal)?;
        let k = if r.k == 0 { 10 } else { r.k };
        if k > MAX_K {
            return Err(invalid("k", format!("{k} exceeds {MAX_K}")));
        }
        let mode = mode_from_pb(r.mode)?;
        let fusion = match pb::Fusion::try_from(r.fusion)
            .map_err(|_| invalid("fusion", format!("unknown value {}", r.fusion)))?
        {
            pb::Fusion::Unspecified => None,
            pb::Fusion::Rrf => Some(FusionMethod::Rrf),
            pb::Fusion::Weighted => Some(FusionMethod::Weighted),
        };
        if r.candidates > 10_000 {
            return Err(invalid(
                "candidates",
                format!("{} exceeds 10000", r.candidates),
            ));
        }
        let candidates = (r.candidates > 0).then_some(r.candidates as usize);
        let intent = intent_from_pb("intent", &r.intent)?;
        Ok(Self {
            target: r.target,
            query: Query {
                text: r.query,
                reader,
                k: k as usize,
                mode,
                fusion,
                candidates,
            },
            routing_key: r.routing_key,
            explain: r.explain,
            intent,
        })
    }
}

/// A wire principal as a reader (no principal: no user, no groups).
/// Most groups a request's principal may name.
pub const MAX_PRINCIPAL_GROUPS: usize = 1024;
/// Longest user or group name in a request's principal, in bytes.
pub const MAX_PRINCIPAL_NAME_BYTES: usize = 256;

pub(crate) fn reader_from_pb(principal: Option<pb::Principal>) -> Result<Reader, InvalidField> {
    let principal = principal.unwrap_or_default();
    if principal.groups.len() > MAX_PRINCIPAL_GROUPS {
        return Err(invalid(
            "principal",
            format!(
                "{} groups exceed the limit of {MAX_PRINCIPAL_GROUPS}",
                principal.groups.len()
            ),
        ));
    }
    if let Some(long) = std::iter::once(&principal.user)
        .chain(&principal.groups)
        .find(|name| name.len() > MAX_PRINCIPAL_NAME_BYTES)
    {
        let start: String = long.chars().take(32).collect();
        return Err(invalid(
            "principal",
            format!(
                "name {start:?}... of {} bytes exceeds the limit of {MAX_PRINCIPAL_NAME_BYTES}",
                long.len()
            ),
        ));
    }
    let user = Some(principal.user.as_str()).filter(|u| !u.is_empty());
    Reader::new(user, &principal.groups).map_err(|e| invalid("principal", e.to_string()))
}

/// A reader as a wire principal.
pub(crate) fn reader_to_pb(reader: &Reader) -> pb::Principal {
    let mut user = String::new();
    let mut groups = Vec::new();
    for p in reader.tokens() {
        match p {
            quire_core::Principal::User(u) => user = u.clone(),
            quire_core::Principal::Group(g) => groups.push(g.clone()),
            quire_core::Principal::Public => {}
        }
    }
    pb::Principal { user, groups }
}

/// A wire mode (unspecified: hybrid).
pub(crate) fn mode_from_pb(mode: i32) -> Result<Mode, InvalidField> {
    Ok(
        match pb::Mode::try_from(mode)
            .map_err(|_| invalid("mode", format!("unknown value {mode}")))?
        {
            pb::Mode::Unspecified | pb::Mode::Hybrid => Mode::Hybrid,
            pb::Mode::Bm25 => Mode::Bm25,
            pb::Mode::Vector => Mode::Vector,
        },
    )
}

/// A mode on the wire.
pub(crate) fn mode_to_pb(mode: Mode) -> i32 {
    let mode = match mode {
        Mode::Hybrid => pb::Mode::Hybrid,
        Mode::Bm25 => pb::Mode::Bm25,
        Mode::Vector => pb::Mode::Vector,
    };
    mode as i32
}

/// The request a client sends for `query` against `target`.
pub fn retrieve_request(target: &str, query: &Query, explain: bool) -> pb::RetrieveRequest {
    pb::RetrieveRequest {
        target: target.to_owned(),
        query: query.text.clone(),
        principal: Some(reader_to_pb(&query.reader)),
        k: query.k as u32,
        mode: mode_to_pb(query.mode),
        fusion: match query.fusion {
            None => pb::Fusion::Unspecified,
            Some(FusionMethod::Rrf) => pb::Fusion::Rrf,
            Some(FusionMethod::Weighted) => pb::Fusion::Weighted,
        } as i32,
        candidates: query.candidates.unwrap_or(0) as u32,
        routing_key: String::new(),
        explain,
        intent: String::new(),
    }
}

/// Step timings on the wire.
pub(crate) fn timings_to_pb(t: Timings) -> pb::Timings {
    pb::Timings {
        embed_us: t.embed,
        bm25_us: t.bm25,
        vector_us: t.vector,
        fusion_us: t.fusion,
        total_us: t.total,
    }
}

/// Step timings from the wire (absent: zeros).
pub(crate) fn timings_from_pb(t: Option<pb::Timings>) -> Timings {
    let t = t.unwrap_or_default();
    Timings {
        embed: t.embed_us,
        bm25: t.bm25_us,
        vector: t.vector_us,
        fusion: t.fusion_us,
        total: t.total_us,
    }
}

fn retriever(h: Option<RetrieverHit>) -> Option<pb::RetrieverHit> {
    h.map(|h| pb::RetrieverHit {
        rank: h.rank,
        score: h.score,
    })
}

/// The wire form of a response; without `explain`, per-retriever details are left out.
pub fn response_to_pb(r: Response, explain: bool) -> pb::RetrieveResponse {
    let l = r.lineage;
    pb::RetrieveResponse {
        hits: r
            .hits
            .into_iter()
            .map(|h| pb::Hit {
                chunk_id: h.chunk_id,
                doc_id: h.doc_id,
                title: h.title,
                text: h.text,
                score: h.score,
                bm25: if explain { retriever(h.bm25) } else { None },
                vector: if explain { retriever(h.vector) } else { None },
                metadata: h.metadata.into_iter().collect(),
            })
            .collect(),
        lineage: Some(pb::Lineage {
            index_id: l.index_id.to_string(),
            content_digest: l.content_digest,
            snapshot_id: l.snapshot_id.to_string(),
            embedding_model: l.embedding_model,
            embedding_digest: l.embedding_digest,
            alias: l.alias.unwrap_or_default(),
            revision: l.revision.unwrap_or(0),
            arm: l.arm.map(|a| a.as_str().to_owned()).unwrap_or_default(),
        }),
        timings: Some(timings_to_pb(r.timings_us)),
        nothing_readable: r.nothing_readable,
        request_id: r.request_id.unwrap_or_default(),
        cpu: Some(timings_to_pb(r.cpu_us)),
    }
}

impl TryFrom<pb::RetrieveResponse> for Response {
    type Error = InvalidField;

    fn try_from(r: pb::RetrieveResponse) -> Result<Self, InvalidField> {
        let l = r.lineage.ok_or_else(|| invalid("lineage", "missing"))?;
        let back = |h: Option<pb::RetrieverHit>| {
            h.map(|h| RetrieverHit {
                rank: h.rank,
                score: h.score,
            })
        };
        Ok(Response {
            hits: r
                .hits
                .into_iter()
                .map(|h| Hit {
                    chunk_id: h.chunk_id,
                    doc_id: h.doc_id,
                    title: h.title,
                    text: h.text,
                    score: h.score,
                    bm25: back(h.bm25),
                    vector: back(h.vector),
                    metadata: h.metadata.into_iter().collect::<BTreeMap<_, _>>(),
                })
                .collect(),
            lineage: Lineage {
                index_id: parse("lineage.index_id", &l.index_id)?,
                content_digest: l.content_digest,
                snapshot_id: parse("lineage.snapshot_id", &l.snapshot_id)?,
                embedding_model: l.embedding_model,
                embedding_digest: l.embedding_digest,
                alias: Some(l.alias).filter(|a| !a.is_empty()),
                revision: Some(l.revision).filter(|r| *r > 0),
                arm: match l.arm.as_str() {
                    "" => None,
                    "primary" => Some(Arm::Primary),
                    "canary" => Some(Arm::Canary),
                    other => return Err(invalid("lineage.arm", format!("unknown arm {other:?}"))),
                },
            },
            nothing_readable: r.nothing_readable,
            timings_us: timings_from_pb(r.timings),
            cpu_us: timings_from_pb(r.cpu),
            request_id: Some(r.request_id).filter(|id| !id.is_empty()),
        })
    }
}

impl From<SnapshotInfo> for pb::Snapshot {
    fn from(s: SnapshotInfo) -> Self {
        pb::Snapshot {
            snapshot_id: s.snapshot_id.to_string(),
            documents: s.documents,
            bytes: s.bytes,
            imported_at: s.imported_at,
            source: s.source,
            format: s.format,
        }
    }
}

impl TryFrom<pb::Snapshot> for SnapshotInfo {
    type Error = InvalidField;

    fn try_from(s: pb::Snapshot) -> Result<Self, InvalidField> {
        Ok(SnapshotInfo {
            snapshot_id: parse::<SnapshotId>("snapshot_id", &s.snapshot_id)?,
            documents: s.documents,
            bytes: s.bytes,
            imported_at: s.imported_at,
            source: s.source,
            format: s.format,
        })
    }
}

/// The corpus format named in an import header.
pub fn corpus_format(value: i32) -> Result<Option<CorpusFormat>, InvalidField> {
    match pb::CorpusFormat::try_from(value)
        .map_err(|_| invalid("header.format", format!("unknown value {value}")))?
    {
        pb::CorpusFormat::Unspecified => Ok(None),
        pb::CorpusFormat::Jsonl => Ok(Some(CorpusFormat::Jsonl)),
        pb::CorpusFormat::Beir => Ok(Some(CorpusFormat::Beir)),
        pb::CorpusFormat::Dir => Ok(Some(CorpusFormat::Dir)),
    }
}

/// The wire value of a corpus format.
pub fn corpus_format_to_pb(format: Option<CorpusFormat>) -> i32 {
    (match format {
        None => pb::CorpusFormat::Unspecified,
        Some(CorpusFormat::Jsonl) => pb::CorpusFormat::Jsonl,
        Some(CorpusFormat::Beir) => pb::CorpusFormat::Beir,
        Some(CorpusFormat::Dir) => pb::CorpusFormat::Dir,
    }) as i32
}

impl From<IndexSummary> for pb::IndexSummary {
    fn from(i: IndexSummary) -> Self {
        pb::IndexSummary {
            index_id: i.index_id.to_string(),
            content_digest: i.content_digest,
            snapshot_id: i.snapshot_id.to_string(),
            documents: i.documents,
            chunks: i.chunks,
            model: i.model,
            built_at: i.built_at,
            source_freshness: i.source_freshness,
            stale: i.stale,
        }
    }
}

impl TryFrom<pb::IndexSummary> for IndexSummary {
    type Error = InvalidField;

    fn try_from(i: pb::IndexSummary) -> Result<Self, InvalidField> {
        Ok(IndexSummary {
            index_id: parse::<IndexId>("index_id", &i.index_id)?,
            content_digest: i.content_digest,
            snapshot_id: parse("snapshot_id", &i.snapshot_id)?,
            documents: i.documents,
            chunks: i.chunks,
            model: i.model,
            built_at: i.built_at,
            source_freshness: i.source_freshness,
            stale: i.stale,
        })
    }
}

/// The wire form of a manifest.
pub fn manifest_to_pb(m: &Manifest, stale: Option<bool>) -> pb::IndexManifest {
    pb::IndexManifest {
        index_id: m.index_id.to_string(),
        content_digest: m.content_digest.clone(),
        snapshot_id: m.snapshot_id.to_string(),
        documents: m.counts.documents,
        chunks: m.counts.chunks,
        embedding_model: m.embedding.model_id.clone(),
        manifest_json: serde_json::to_string(m)
            .expect("a manifest serialises: plain structs, strings, numbers, string-keyed maps"),
        stale,
    }
}

impl TryFrom<pb::IndexManifest> for IndexInfo {
    type Error = InvalidField;

    fn try_from(m: pb::IndexManifest) -> Result<Self, InvalidField> {
        let manifest: Manifest = serde_json::from_str(&m.manifest_json)
            .map_err(|e| invalid("manifest_json", e.to_string()))?;
        Ok(IndexInfo {
            manifest,
            stale: m.stale,
        })
    }
}

impl From<VerifyReport> for pb::VerifyIndexResponse {
    fn from(v: VerifyReport) -> Self {
        pb::VerifyIndexResponse {
            index_id: v.index_id.to_string(),
            ok: v.verification.ok,
            content_digest: v.verification.content_digest,
            problems: v.verification.problems,
        }
    }
}

impl TryFrom<pb::VerifyIndexResponse> for VerifyReport {
    type Error = InvalidField;

    fn try_from(v: pb::VerifyIndexResponse) -> Result<Self, InvalidField> {
        Ok(VerifyReport {
            index_id: parse("index_id", &v.index_id)?,
            verification: Verification {
                ok: v.ok,
                content_digest: v.content_digest,
                problems: v.problems,
            },
        })
    }
}

impl From<RebuildCheck> for pb::RebuildCheckResponse {
    fn from(r: RebuildCheck) -> Self {
        pb::RebuildCheckResponse {
            ok: r.ok,
            index_id: r.index_id.to_string(),
            rebuilt_index_id: r.rebuilt_index_id.to_string(),
            content_digest: r.content_digest,
            rebuilt_content_digest: r.rebuilt_content_digest,
            differing_files: r.differing_files,
            notes: r.notes,
        }
    }
}

impl TryFrom<pb::RebuildCheckResponse> for RebuildCheck {
    type Error = InvalidField;

    fn try_from(r: pb::RebuildCheckResponse) -> Result<Self, InvalidField> {
        Ok(RebuildCheck {
            ok: r.ok,
            index_id: parse("index_id", &r.index_id)?,
            rebuilt_index_id: parse("rebuilt_index_id", &r.rebuilt_index_id)?,
            content_digest: r.content_digest,
            rebuilt_content_digest: r.rebuilt_content_digest,
            differing_files: r.differing_files,
            notes: r.notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieve_requests_are_validated_with_field_names() {
        let ok = pb::RetrieveRequest {
            target: "handbook".into(),
            query: "leave".into(),
            ..Default::default()
        };
        let params = RetrieveParams::try_from(ok.clone()).map_err(|e| e.to_string());
        assert_eq!(params.map(|p| p.query.k), Ok(10));
        let cases = [
            (
                pb::RetrieveRequest {
                    target: String::new(),
                    ..ok.clone()
                },
                "field `target`: is empty",
            ),
            (
                pb::RetrieveRequest {
                    query: " ".into(),
                    ..ok.clone()
                },
                "field `query`: is empty",
            ),
            (
                pb::RetrieveRequest {
                    k: 5000,
                    ..ok.clone()
                },
                "field `k`: 5000 exceeds 1000",
            ),
            (
                pb::RetrieveRequest {
                    mode: 42,
                    ..ok.clone()
                },
                "field `mode`: unknown value 42",
            ),
            (
                pb::RetrieveRequest {
                    principal: Some(pb::Principal {
                        user: "a b".into(),
                        groups: vec![],
                    }),
                    ..ok.clone()
                },
                "field `principal`",
            ),
        ];
        for (request, want) in cases {
            let err = RetrieveParams::try_from(request)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(want), "got {err:?}, want {want:?}");
        }
    }
}
