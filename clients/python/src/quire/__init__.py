"""quire-client: Python client for quire, permission-aware retrieval from content-addressed
hybrid indices.

    from quire import Client

    with Client("http://127.0.0.1:50051", token=...) as quire:
        result = quire.query("handbook", "how long is parental leave", groups=["all-staff"])
        for hit in result.hits:
            print(hit.score, hit.doc_id, hit.title)
        print(result.lineage.index_id, result.lineage.content_digest)

:class:`Client` is synchronous, :class:`AsyncClient` the same calls on asyncio (grpc.aio).
Failed calls raise :class:`QuireError` subclasses (:mod:`quire.errors`). The framework
retrievers are in :mod:`quire.langchain` and :mod:`quire.llama_index` (extras
``quire-client[langchain]`` and ``quire-client[llama-index]``). The generated gRPC stubs are
:mod:`quire.v1`.
"""

from .aio import AsyncClient
from .client import Client
from .errors import (
    AlreadyExists,
    AuthError,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuireError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from .types import (
    Advanced,
    AliasRevision,
    BuildEvent,
    BuildResult,
    Canary,
    EmbedCacheStats,
    EvalReport,
    FeedbackCounted,
    GatePolicy,
    Hit,
    IndexManifest,
    IndexSummary,
    Lineage,
    Principal,
    QueryResult,
    Queued,
    RetrieverHit,
    Snapshot,
    StageReused,
    StageStarted,
    Timings,
    VerifyResult,
)

__version__ = "0.1.0"

__all__ = [
    "Advanced",
    "AliasRevision",
    "AlreadyExists",
    "AsyncClient",
    "AuthError",
    "BuildEvent",
    "BuildResult",
    "Canary",
    "Cancelled",
    "Client",
    "DeadlineExceeded",
    "EmbedCacheStats",
    "EvalReport",
    "FailedPrecondition",
    "FeedbackCounted",
    "GatePolicy",
    "Hit",
    "IndexManifest",
    "IndexSummary",
    "Internal",
    "InvalidArgument",
    "Lineage",
    "NotFound",
    "PermissionDenied",
    "Principal",
    "QueryResult",
    "Queued",
    "QuireError",
    "ResourceExhausted",
    "RetrieverHit",
    "Snapshot",
    "StageReused",
    "StageStarted",
    "Timings",
    "Unauthenticated",
    "Unavailable",
    "VerifyResult",
]
