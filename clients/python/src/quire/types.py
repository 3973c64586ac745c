"""What quire answers, as dataclasses (built from the gRPC messages, never exposing them)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .v1 import (
    common_pb2,
    eval_pb2,
    index_pb2,
    release_pb2,
    retrieval_pb2,
    snapshot_pb2,
)

Mode = Literal["hybrid", "bm25", "vector"]
Fusion = Literal["rrf", "weighted"]


@dataclass(frozen=True)
class Principal:
    """Who a query reads as: a chunk is readable when its document's ACL holds ``*``,
    ``user:<user>`` or ``group:<g>`` for one of the groups. On a server with tokens the token
    bounds what may be asserted here."""

    user: str | None = None
    groups: Sequence[str] = ()

    def to_proto(self) -> common_pb2.Principal:
        return common_pb2.Principal(user=self.user or "", groups=list(self.groups))


@dataclass(frozen=True)
class RetrieverHit:
    """One retriever's (BM25 or vector) rank (1-based) and score for a hit."""

    rank: int
    score: float


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk."""

    chunk_id: str
    doc_id: str
    title: str | None
    text: str
    score: float
    #: Set with ``explain=True`` when the BM25 side found the chunk.
    bm25: RetrieverHit | None
    #: Set with ``explain=True`` when the vector side found the chunk.
    vector: RetrieverHit | None
    #: The document's metadata.
    metadata: dict[str, str]

    @classmethod
    def from_proto(cls, h: retrieval_pb2.Hit) -> Hit:
        def side(name: str) -> RetrieverHit | None:
            if not h.HasField(name):
                return None
            r = getattr(h, name)
            return RetrieverHit(rank=r.rank, score=r.score)

        return cls(
            chunk_id=h.chunk_id,
            doc_id=h.doc_id,
            title=h.title if h.HasField("title") else None,
            text=h.text,
            score=h.score,
            bm25=side("bm25"),
            vector=side("vector"),
            metadata=dict(h.metadata),
        )


@dataclass(frozen=True)
class Lineage:
    """Which artifact answered: the index and its digest, the snapshot and embedding model, and
    (when the target was an alias) the alias, its revision and the arm."""

    index_id: str
    content_digest: str
    snapshot_id: str
    embedding_model: str
    embedding_digest: str
    alias: str | None = None
    revision: int | None = None
    #: ``"primary"`` or ``"canary"``.
    arm: str | None = None

    @classmethod
    def from_proto(cls, lineage: common_pb2.Lineage) -> Lineage:
        return cls(
            index_id=lineage.index_id,
            content_digest=lineage.content_digest,
            snapshot_id=lineage.snapshot_id,
            embedding_model=lineage.embedding_model,
            embedding_digest=lineage.embedding_digest,
            alias=lineage.alias or None,
            revision=lineage.revision if lineage.alias else None,
            arm=lineage.arm or None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The lineage as a flat dict (for framework metadata)."""
        return {
            "index_id": self.index_id,
            "content_digest": self.content_digest,
            "snapshot_id": self.snapshot_id,
            "embedding_model": self.embedding_model,
            "embedding_digest": self.embedding_digest,
            "alias": self.alias,
            "revision": self.revision,
            "arm": self.arm,
        }


@dataclass(frozen=True)
class Timings:
    """Microseconds per retrieval step."""

    embed_us: int
    bm25_us: int
    vector_us: int
    fusion_us: int
    total_us: int

    @classmethod
    def from_proto(cls, t: retrieval_pb2.Timings) -> Timings:
        return cls(t.embed_us, t.bm25_us, t.vector_us, t.fusion_us, t.total_us)


@dataclass(frozen=True)
class QueryResult:
    """Hits, best first, with the lineage of the index that answered."""

    hits: list[Hit]
    lineage: Lineage
    timings: Timings
    #: Thread CPU time per step.
    cpu: Timings
    #: True when the principal may read no chunk of the index at all (no hits because of
    #: permissions, not because nothing matched).
    nothing_readable: bool
    #: The server's id of this request, for :meth:`quire.Client.feedback`.
    request_id: str | None

    @classmethod
    def from_proto(cls, r: retrieval_pb2.RetrieveResponse) -> QueryResult:
        return cls(
            hits=[Hit.from_proto(h) for h in r.hits],
            lineage=Lineage.from_proto(r.lineage),
            timings=Timings.from_proto(r.timings),
            cpu=Timings.from_proto(r.cpu),
            nothing_readable=r.nothing_readable,
            request_id=r.request_id or None,
        )


@dataclass(frozen=True)
class FeedbackCounted:
    """Where :meth:`quire.Client.feedback` was counted: the alias, its arm and the intent."""

    alias: str
    arm: str
    intent: str | None


@dataclass(frozen=True)
class Snapshot:
    """A stored corpus snapshot."""

    snapshot_id: str
    documents: int
    bytes: int
    imported_at: str
    source: str
    format: str

    @classmethod
    def from_proto(cls, s: snapshot_pb2.Snapshot) -> Snapshot:
        return cls(s.snapshot_id, s.documents, s.bytes, s.imported_at, s.source, s.format)


@dataclass(frozen=True)
class IndexManifest:
    """An index's manifest (``manifest_json`` is the exact manifest.json)."""

    index_id: str
    content_digest: str
    snapshot_id: str
    documents: int
    chunks: int
    embedding_model: str
    manifest_json: str
    #: Whether the source is older than the spec's freshness window (None: no window).
    stale: bool | None

    @classmethod
    def from_proto(cls, m: index_pb2.IndexManifest) -> IndexManifest:
        return cls(
            index_id=m.index_id,
            content_digest=m.content_digest,
            snapshot_id=m.snapshot_id,
            documents=m.documents,
            chunks=m.chunks,
            embedding_model=m.embedding_model,
            manifest_json=m.manifest_json,
            stale=m.stale if m.HasField("stale") else None,
        )

    def manifest(self) -> dict[str, Any]:
        """manifest.json, parsed."""
        return json.loads(self.manifest_json)


@dataclass(frozen=True)
class IndexSummary:
    """One index of :meth:`quire.Client.indexes`."""

    index_id: str
    content_digest: str
    snapshot_id: str
    documents: int
    chunks: int
    model: str
    built_at: str
    source_freshness: str
    stale: bool | None

    @classmethod
    def from_proto(cls, s: index_pb2.IndexSummary) -> IndexSummary:
        return cls(
            s.index_id,
            s.content_digest,
            s.snapshot_id,
            s.documents,
            s.chunks,
            s.model,
            s.built_at,
            s.source_freshness,
            s.stale if s.HasField("stale") else None,
        )


@dataclass(frozen=True)
class VerifyResult:
    """Every file hash and the digest of an index, recomputed."""

    index_id: str
    ok: bool
    content_digest: str
    #: One line per problem, naming the file or field.
    problems: list[str]


# Build progress: the events :meth:`quire.Client.build` streams, in order.


@dataclass(frozen=True)
class Queued:
    """Waiting in the server's build queue at this position (0 = next)."""

    position: int


@dataclass(frozen=True)
class StageStarted:
    """A build stage began; ``total`` is the units of work it has (0 when unknown)."""

    name: str
    total: int


@dataclass(frozen=True)
class Advanced:
    """The current stage has done ``done`` units of its ``total``."""

    done: int


@dataclass(frozen=True)
class EmbedCacheStats:
    """The embed stage is done: chunk vectors from the embedding cache, and computed."""

    hits: int
    misses: int


@dataclass(frozen=True)
class StageReused:
    """The stage that just began took its files from another index with the same stage key."""

    stage: str
    from_index: str


@dataclass(frozen=True)
class BuildResult:
    """The last event of a build: the manifest, and whether the index already existed."""

    manifest: IndexManifest
    reused: bool
    #: Documents nobody may read (no ACL of their own and no ``default_acl``).
    unreadable_documents: int


BuildEvent = Queued | StageStarted | Advanced | EmbedCacheStats | StageReused | BuildResult


def build_event(e: index_pb2.BuildIndexEvent) -> BuildEvent | None:
    """The dataclass for one streamed build event (None for an event this client does not
    know, from a newer server)."""
    kind = e.WhichOneof("event")
    if kind == "queued":
        return Queued(e.queued)
    if kind == "stage":
        return StageStarted(e.stage.name, e.stage.total)
    if kind == "advance":
        return Advanced(e.advance.done)
    if kind == "embed_cache":
        return EmbedCacheStats(e.embed_cache.hits, e.embed_cache.misses)
    if kind == "reused":
        return StageReused(e.reused.stage, e.reused.from_index)
    if kind == "result":
        r = e.result
        return BuildResult(IndexManifest.from_proto(r.manifest), r.reused, r.unreadable_documents)
    return None


@dataclass(frozen=True)
class Canary:
    """A canary arm: the index and the share of routing keys it gets, in percent."""

    index_id: str
    percent: float


@dataclass(frozen=True)
class GatePolicy:
    """The quality gate promotions of an alias must pass."""

    eval_spec: str
    mode: str
    min_ndcg10: float | None
    max_regression: float | None


@dataclass(frozen=True)
class AliasRevision:
    """One revision of a release alias: what it points at after ``action``."""

    alias: str
    revision: int
    time: str
    actor: str
    reason: str
    action: str
    primary: str
    canary: Canary | None
    shadow: str | None
    gate: GatePolicy | None
    auto_rollback: str | None

    @classmethod
    def from_proto(cls, a: release_pb2.AliasRevision) -> AliasRevision:
        canary = None
        if a.HasField("canary") and a.canary.index_id:
            canary = Canary(a.canary.index_id, a.canary.basis_points / 100)
        gate = None
        if a.HasField("policy") and a.policy.eval_spec:
            p = a.policy
            gate = GatePolicy(
                p.eval_spec,
                p.mode,
                p.min_ndcg10 if p.HasField("min_ndcg10") else None,
                p.max_regression if p.HasField("max_regression") else None,
            )
        return cls(
            alias=a.alias,
            revision=a.revision,
            time=a.time,
            actor=a.actor,
            reason=a.reason,
            action=a.action,
            primary=a.primary,
            canary=canary,
            shadow=a.shadow or None,
            gate=gate,
            auto_rollback=a.auto_rollback or None,
        )


@dataclass(frozen=True)
class EvalReport:
    """A stored evaluation: nDCG@10, recall@10, recall@100 and MRR@10 of one index on one
    dataset, under one eval spec."""

    report_id: str
    index_id: str
    eval_spec: str
    mode: str
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    created: str
    actor: str
    report_json: str = field(repr=False)

    @classmethod
    def from_proto(cls, r: eval_pb2.EvalReport) -> EvalReport:
        return cls(
            r.report_id,
            r.index_id,
            r.eval_spec,
            r.mode,
            r.ndcg_at_10,
            r.recall_at_10,
            r.recall_at_100,
            r.mrr_at_10,
            r.created,
            r.actor,
            r.report_json,
        )

    def report(self) -> dict[str, Any]:
        """The full report (per-query scores and top-10 documents), parsed."""
        return json.loads(self.report_json)
