"""The asyncio client (grpc.aio): the same calls as :class:`quire.Client`, awaited."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import grpc

from . import _requests as rq
from .errors import QuireError, from_rpc_error
from .types import (
    AliasRevision,
    BuildEvent,
    BuildResult,
    EvalReport,
    FeedbackCounted,
    Fusion,
    IndexManifest,
    IndexSummary,
    Mode,
    Principal,
    QueryResult,
    Snapshot,
    VerifyResult,
    build_event,
)
from .v1 import eval_pb2, index_pb2, release_pb2, snapshot_pb2


class AsyncClient:
    """An asyncio connection to a quire server (grpc.aio); see :class:`quire.Client` for the
    arguments. Create it inside a running event loop; ``async with`` closes it.

    ``url`` is ``http://HOST:PORT`` (plaintext), ``https://HOST:PORT`` (TLS; ``root_certificates``
    is the PEM of a private CA, if any) or ``HOST:PORT``. ``token`` is sent as ``authorization:
    Bearer <token>``; ``user_token``, an end user's signed JWT, as ``x-quire-user-token`` (each
    call may override it). ``timeout`` (seconds) bounds every call but builds and evaluations,
    which run as long as they take. Every failed call raises a :class:`quire.QuireError`
    subclass. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        user_token: str | None = None,
        timeout: float | None = 60.0,
        root_certificates: bytes | None = None,
    ) -> None:
        address, tls = rq.target_address(url)
        if tls:
            self._channel = grpc.aio.secure_channel(
                address, rq.credentials(root_certificates), options=rq.CHANNEL_OPTIONS
            )
        else:
            self._channel = grpc.aio.insecure_channel(address, options=rq.CHANNEL_OPTIONS)
        self._stubs = rq.Stubs(self._channel)
        self._token = token
        self._user_token = user_token
        self.timeout = timeout

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _md(self, user_token: str | None) -> list[tuple[str, str]]:
        return rq.metadata(self._token, user_token or self._user_token)

    async def _unary(
        self, rpc, request, user_token: str | None = None, timeout: object = rq.CLIENT_TIMEOUT
    ):
        try:
            return await rpc(
                request,
                metadata=self._md(user_token),
                timeout=self.timeout if timeout is rq.CLIENT_TIMEOUT else timeout,
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    # Retrieval

    async def query(
        self,
        target: str,
        text: str,
        *,
        user: str | None = None,
        groups: Sequence[str] = (),
        principal: Principal | None = None,
        k: int = 10,
        mode: Mode | None = None,
        fusion: Fusion | None = None,
        candidates: int | None = None,
        routing_key: str | None = None,
        explain: bool = False,
        intent: str | None = None,
        user_token: str | None = None,
    ) -> QueryResult:
        """Retrieve the best ``k`` chunks for ``text`` that the reader may read.

        ``target`` is an index id (or a unique prefix of at least 12 hex characters), an alias,
        or ``ALIAS@REVISION``. The reader is ``user``/``groups`` (or ``principal``); on a server
        with tokens the token decides what may be asserted. ``mode`` is ``"hybrid"`` (default),
        ``"bm25"`` or ``"vector"``; ``routing_key`` sticks a caller to one arm of a canary;
        ``explain`` adds each retriever's rank and score to the hits.
        """
        request = rq.retrieve(
            target,
            text,
            user=user,
            groups=groups,
            principal_=principal,
            k=k,
            mode=mode,
            fusion=fusion,
            candidates=candidates,
            routing_key=routing_key,
            explain=explain,
            intent=intent,
        )
        return QueryResult.from_proto(
            await self._unary(self._stubs.retrieval.Retrieve, request, user_token)
        )

    async def feedback(
        self, request_id: str, success: bool, label: str | None = None
    ) -> FeedbackCounted:
        """Record whether the answer to a request through an alias (its ``request_id``) was a
        success; once per request, from the token that sent it, within the server's window."""
        r = await self._unary(
            self._stubs.retrieval.Feedback, rq.feedback(request_id, success, label)
        )
        return FeedbackCounted(r.alias, r.arm, r.intent or None)

    # Snapshots

    async def import_corpus(
        self,
        source: str | os.PathLike | bytes,
        *,
        format: str | None = None,
        file_name: str | None = None,
    ) -> Snapshot:
        """Upload a corpus (a JSONL or BEIR ``corpus.jsonl`` file, or its bytes) and store it as a
        snapshot. ``format`` is ``"jsonl"`` or ``"beir"`` (default: detected)."""
        requests = rq.upload(source, format, file_name)
        return Snapshot.from_proto(
            await self._unary(self._stubs.snapshots.ImportSnapshot, requests, timeout=None)
        )

    async def import_server_path(self, path: str, *, format: str | None = None) -> Snapshot:
        """Import a path on the server's filesystem (under its ``[import] roots``)."""
        requests = rq.server_path(path, format)
        return Snapshot.from_proto(
            await self._unary(self._stubs.snapshots.ImportSnapshot, requests, timeout=None)
        )

    async def snapshots(self) -> list[Snapshot]:
        r = await self._unary(
            self._stubs.snapshots.ListSnapshots, snapshot_pb2.ListSnapshotsRequest()
        )
        return [Snapshot.from_proto(s) for s in r.snapshots]

    # Indices

    async def build_events(
        self, snapshot_id: str, *, spec_toml: str | None = None
    ) -> AsyncIterator[BuildEvent]:
        """Build (or verify and reuse) the index of a snapshot and spec (TOML text; None: the
        default spec), yielding the server's progress events as they arrive; the last is a
        :class:`quire.BuildResult`. Leaving the iteration early cancels the build (the server
        stops a build whose client left); an index already built stays."""
        call = self._stubs.indexes.BuildIndex(
            rq.build(snapshot_id, spec_toml), metadata=self._md(None)
        )
        try:
            async for e in call:
                event = build_event(e)
                if event is not None:
                    yield event
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None
        finally:
            # A caller that stops early ends the stream, and the server then cancels the build.
            call.cancel()

    async def build(
        self,
        snapshot_id: str,
        *,
        spec_toml: str | None = None,
        on_progress: Callable[[BuildEvent], Awaitable[None] | None] | None = None,
    ) -> BuildResult:
        """Build and return the result; ``on_progress`` (a function or a coroutine function)
        sees every event before it."""
        async for event in self.build_events(snapshot_id, spec_toml=spec_toml):
            if isinstance(event, BuildResult):
                return event
            if on_progress is not None:
                pending = on_progress(event)
                if pending is not None:
                    await pending
        raise QuireError(grpc.StatusCode.INTERNAL, "the build stream ended without a result")

    async def index(self, target: str) -> IndexManifest:
        """The manifest of an index (id, prefix or alias)."""
        return IndexManifest.from_proto(
            await self._unary(
                self._stubs.indexes.GetIndex, index_pb2.GetIndexRequest(target=target)
            )
        )

    async def indexes(self) -> list[IndexSummary]:
        r = await self._unary(self._stubs.indexes.ListIndexes, index_pb2.ListIndexesRequest())
        return [IndexSummary.from_proto(s) for s in r.indexes]

    async def verify(self, target: str) -> VerifyResult:
        """Recompute every file hash and the digest of an index."""
        r = await self._unary(
            self._stubs.indexes.VerifyIndex,
            index_pb2.VerifyIndexRequest(target=target),
            timeout=None,
        )
        return VerifyResult(r.index_id, r.ok, r.content_digest, list(r.problems))

    # Release aliases (the releaser role; every change needs a reason)

    async def alias_show(self, name: str) -> AliasRevision:
        """The alias's current revision."""
        return AliasRevision.from_proto(
            await self._unary(self._stubs.release.GetAlias, release_pb2.GetAliasRequest(alias=name))
        )

    async def alias_history(self, name: str) -> list[AliasRevision]:
        r = await self._unary(
            self._stubs.release.AliasHistory, release_pb2.GetAliasRequest(alias=name)
        )
        return [AliasRevision.from_proto(a) for a in r.revisions]

    async def alias_list(self) -> list[AliasRevision]:
        r = await self._unary(self._stubs.release.ListAliases, release_pb2.ListAliasesRequest())
        return [AliasRevision.from_proto(a) for a in r.revisions]

    async def _change(self, request) -> AliasRevision:
        return AliasRevision.from_proto(await self._unary(self._stubs.release.ChangeAlias, request))

    async def alias_set(self, name: str, index: str, *, reason: str) -> AliasRevision:
        """Create the alias or repoint its primary to ``index``."""
        return await self._change(rq.change_alias(name, reason, set=index))

    async def alias_canary(
        self, name: str, index: str, percent: float, *, reason: str
    ) -> AliasRevision:
        """Route ``percent`` (0 < p <= 100) of routing keys to ``index``."""
        return await self._change(rq.change_alias(name, reason, canary=rq.canary(index, percent)))

    async def alias_clear_canary(self, name: str, *, reason: str) -> AliasRevision:
        return await self._change(rq.change_alias(name, reason, clear_canary=rq.EMPTY))

    async def alias_shadow(self, name: str, index: str, *, reason: str) -> AliasRevision:
        """Shadow the primary with ``index`` (compared, never answered)."""
        return await self._change(rq.change_alias(name, reason, shadow=index))

    async def alias_clear_shadow(self, name: str, *, reason: str) -> AliasRevision:
        return await self._change(rq.change_alias(name, reason, clear_shadow=rq.EMPTY))

    async def alias_promote(self, name: str, *, reason: str, force: bool = False) -> AliasRevision:
        """Make the canary the primary (``force``: past a failing gate, admin only)."""
        return await self._change(rq.change_alias(name, reason, force, promote=rq.EMPTY))

    async def alias_rollback(
        self, name: str, *, reason: str, to_revision: int | None = None
    ) -> AliasRevision:
        """Restore revision ``to_revision``'s state (None: the previous primary, no canary)."""
        return await self._change(rq.change_alias(name, reason, rollback=rq.rollback(to_revision)))

    # Evaluation (the builder role)

    async def evaluate(
        self,
        target: str,
        dataset: str,
        *,
        split: str | None = None,
        mode: Mode | None = None,
        user: str | None = None,
        groups: Sequence[str] = (),
        principal: Principal | None = None,
        ignore_identical_ids: bool | None = None,
        user_token: str | None = None,
    ) -> EvalReport:
        """Evaluate ``target`` on a BEIR dataset directory on the server (under its ``[import]
        roots``), as the given reader, and store the report."""
        request = rq.evaluate(
            target,
            dataset,
            split=split,
            mode=mode,
            user=user,
            groups=groups,
            principal_=principal,
            ignore_identical_ids=ignore_identical_ids,
        )
        return EvalReport.from_proto(
            await self._unary(self._stubs.eval.Evaluate, request, user_token, timeout=None)
        )

    async def eval_reports(self, target: str | None = None) -> list[EvalReport]:
        """Stored evaluation reports (of ``target``, or all)."""
        r = await self._unary(
            self._stubs.eval.ListReports, eval_pb2.ListReportsRequest(target=target or "")
        )
        return [EvalReport.from_proto(x) for x in r.reports]
