"""The gRPC requests and call options both clients send (one place, so the sync and asyncio
clients cannot drift)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlparse

import grpc

from .types import Fusion, Mode, Principal
from .v1 import (
    common_pb2,
    eval_pb2,
    eval_pb2_grpc,
    index_pb2,
    index_pb2_grpc,
    release_pb2,
    release_pb2_grpc,
    retrieval_pb2,
    retrieval_pb2_grpc,
    snapshot_pb2,
    snapshot_pb2_grpc,
)

#: The metadata key of an end user's signed JWT (the server's `[jwt]` section says whom it
#: trusts, and each token whether it may present one).
USER_TOKEN_HEADER = "x-quire-user-token"

#: Bytes per message of a corpus upload.
UPLOAD_CHUNK = 1 << 20

#: The default of ``timeout`` in the clients' calls: the client's own timeout.
CLIENT_TIMEOUT = object()

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]

_MODES = {
    None: retrieval_pb2.MODE_UNSPECIFIED,
    "hybrid": retrieval_pb2.MODE_HYBRID,
    "bm25": retrieval_pb2.MODE_BM25,
    "vector": retrieval_pb2.MODE_VECTOR,
}
_FUSIONS = {
    None: retrieval_pb2.FUSION_UNSPECIFIED,
    "rrf": retrieval_pb2.FUSION_RRF,
    "weighted": retrieval_pb2.FUSION_WEIGHTED,
}
_FORMATS = {
    None: snapshot_pb2.CORPUS_FORMAT_UNSPECIFIED,
    "jsonl": snapshot_pb2.CORPUS_FORMAT_JSONL,
    "beir": snapshot_pb2.CORPUS_FORMAT_BEIR,
    "dir": snapshot_pb2.CORPUS_FORMAT_DIR,
}


def _choice(table: dict[str | None, Any], value: str | None, what: str) -> Any:
    if value not in table:
        names = ", ".join(repr(k) for k in table if k is not None)
        raise ValueError(f"unknown {what} {value!r}: expected one of {names}")
    return table[value]


def target_address(url: str) -> tuple[str, bool]:
    """``(host:port, tls)`` for ``http://host:port``, ``https://host:port`` or ``host:port``."""
    if "://" not in url:
        return url, False
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"server URL {url!r}: expected http://HOST:PORT or https://HOST:PORT")
    return parsed.netloc, parsed.scheme == "https"


def credentials(root_certificates: bytes | None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=root_certificates)


def metadata(token: str | None, user_token: str | None) -> list[tuple[str, str]]:
    md = []
    if token:
        md.append(("authorization", f"Bearer {token}"))
    if user_token:
        md.append((USER_TOKEN_HEADER, user_token))
    return md


class Stubs:
    """One stub per quire service, on a sync or an asyncio channel."""

    def __init__(self, channel) -> None:
        self.retrieval = retrieval_pb2_grpc.RetrievalServiceStub(channel)
        self.snapshots = snapshot_pb2_grpc.SnapshotServiceStub(channel)
        self.indexes = index_pb2_grpc.IndexServiceStub(channel)
        self.release = release_pb2_grpc.ReleaseServiceStub(channel)
        self.eval = eval_pb2_grpc.EvalServiceStub(channel)


def principal(
    user: str | None, groups: Sequence[str], as_: Principal | None
) -> common_pb2.Principal:
    if as_ is not None:
        if user is not None or groups:
            raise ValueError("give either principal= or user=/groups=, not both")
        return as_.to_proto()
    if isinstance(groups, str):
        raise TypeError("groups must be a sequence of group names, not one string")
    return Principal(user, tuple(groups)).to_proto()


def retrieve(
    target: str,
    text: str,
    *,
    user: str | None,
    groups: Sequence[str],
    principal_: Principal | None,
    k: int,
    mode: Mode | None,
    fusion: Fusion | None,
    candidates: int | None,
    routing_key: str | None,
    explain: bool,
    intent: str | None,
) -> retrieval_pb2.RetrieveRequest:
    if k < 0 or (candidates is not None and candidates < 0):
        # The wire type is unsigned; the server range-checks the rest (0 < k <= max_k).
        raise ValueError(f"k and candidates must not be negative (k={k}, candidates={candidates})")
    return retrieval_pb2.RetrieveRequest(
        target=target,
        query=text,
        principal=principal(user, groups, principal_),
        k=k,
        mode=_choice(_MODES, mode, "mode"),
        fusion=_choice(_FUSIONS, fusion, "fusion"),
        candidates=candidates or 0,
        routing_key=routing_key or "",
        explain=explain,
        intent=intent or "",
    )


def feedback(request_id: str, success: bool, label: str | None) -> retrieval_pb2.FeedbackRequest:
    return retrieval_pb2.FeedbackRequest(request_id=request_id, success=success, label=label or "")


def upload(
    source: str | os.PathLike | bytes,
    format: str | None,
    file_name: str | None,
) -> Iterator[snapshot_pb2.ImportSnapshotRequest]:
    """The header, then the corpus in chunks: from a file path, or bytes already in memory."""
    fmt = _choice({k: v for k, v in _FORMATS.items() if k != "dir"}, format, "upload format")
    if isinstance(source, bytes):
        name = file_name or "upload"
    else:
        name = file_name or os.path.basename(os.fspath(source))

    def requests() -> Iterator[snapshot_pb2.ImportSnapshotRequest]:
        yield snapshot_pb2.ImportSnapshotRequest(
            header=snapshot_pb2.ImportHeader(format=fmt, file_name=name)
        )
        if isinstance(source, bytes):
            for at in range(0, len(source), UPLOAD_CHUNK):
                yield snapshot_pb2.ImportSnapshotRequest(chunk=source[at : at + UPLOAD_CHUNK])
            return
        with open(source, "rb") as f:
            while chunk := f.read(UPLOAD_CHUNK):
                yield snapshot_pb2.ImportSnapshotRequest(chunk=chunk)

    return requests()


def server_path(path: str, format: str | None) -> Iterator[snapshot_pb2.ImportSnapshotRequest]:
    header = snapshot_pb2.ImportHeader(format=_choice(_FORMATS, format, "format"), server_path=path)
    return iter([snapshot_pb2.ImportSnapshotRequest(header=header)])


def build(snapshot_id: str, spec_toml: str | None) -> index_pb2.BuildIndexRequest:
    return index_pb2.BuildIndexRequest(snapshot_id=snapshot_id, spec_toml=spec_toml or "")


def change_alias(
    name: str, reason: str, force: bool = False, **change
) -> release_pb2.ChangeAliasRequest:
    if not reason:
        raise ValueError("an alias change needs a reason")
    return release_pb2.ChangeAliasRequest(alias=name, reason=reason, force=force, **change)


EMPTY = release_pb2.Empty()


def canary(index: str, percent: float) -> release_pb2.SetCanary:
    return release_pb2.SetCanary(index=index, percent=percent)


def rollback(to_revision: int | None) -> release_pb2.Rollback:
    return release_pb2.Rollback(to_revision=to_revision or 0)


def evaluate(
    target: str,
    dataset: str,
    *,
    split: str | None,
    mode: Mode | None,
    user: str | None,
    groups: Sequence[str],
    principal_: Principal | None,
    ignore_identical_ids: bool | None,
) -> eval_pb2.EvaluateRequest:
    request = eval_pb2.EvaluateRequest(
        target=target,
        dataset=dataset,
        split=split or "",
        mode=_choice(_MODES, mode, "mode"),
        principal=principal(user, groups, principal_),
    )
    if ignore_identical_ids is not None:
        request.ignore_identical_ids = ignore_identical_ids
    return request
