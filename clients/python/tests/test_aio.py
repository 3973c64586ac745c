"""The asyncio client (grpc.aio): the same calls as the sync client, awaited."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from quire import (
    AsyncClient,
    BuildResult,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    StageStarted,
    Unauthenticated,
)

HERON = "Project Heron proposed price acquisition"


async def test_async_query_permissions_and_lineage(server):
    async with AsyncClient(server.url, token=server.tokens["reader"]) as reader:
        staff, execs = await asyncio.gather(
            reader.query("handbook", HERON, groups=["all-staff"], k=50),
            reader.query("handbook", HERON, groups=["execs"], k=5, mode="bm25"),
        )
        assert staff.hits and not any(h.doc_id.startswith("execs/") for h in staff.hits)
        assert any(h.doc_id.startswith("execs/") for h in execs.hits)
        manifest = await reader.index("handbook")
        assert staff.lineage.index_id == manifest.index_id
        assert staff.lineage.content_digest == manifest.content_digest
        assert staff.lineage.alias == "handbook"


async def test_async_errors(server):
    async with AsyncClient(server.url, token=server.tokens["reader"]) as reader:
        with pytest.raises(NotFound) as e:
            await reader.query("no-such-index", "x", groups=["all-staff"])
        assert e.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(InvalidArgument):
            await reader.query("handbook", "x", groups=["all-staff"], k=100_000)
        with pytest.raises(PermissionDenied):
            await reader.alias_set("py-async", "handbook", reason="readers may not")
    async with AsyncClient(server.url, token="wrong") as bad:
        with pytest.raises(Unauthenticated):
            await bad.indexes()


async def test_async_import_build_alias_and_evaluate(server):
    lines = [
        f'{{"id":"aio-{i}","text":"asynchronous lighthouse keeper log {i}","acl":["*"]}}'
        for i in range(30)
    ]
    async with AsyncClient(server.url, token=server.tokens["admin"]) as admin:
        snap = await admin.import_corpus(("\n".join(lines)).encode(), file_name="aio.jsonl")
        assert snap.documents == 30
        seen = []

        async def progress(event):
            seen.append(event)

        result = await admin.build(snap.snapshot_id, on_progress=progress)
        assert isinstance(result, BuildResult) and result.manifest.documents == 30
        assert any(isinstance(e, StageStarted) for e in seen)
        events = [e async for e in admin.build_events(snap.snapshot_id)]
        assert isinstance(events[-1], BuildResult) and events[-1].reused

        rev = await admin.alias_set("py-async", result.manifest.index_id, reason="async release")
        assert (await admin.alias_show("py-async")).revision == rev.revision
        r = await admin.query("py-async", "lighthouse keeper", k=3)
        assert r.lineage.alias == "py-async" and r.lineage.revision == rev.revision
        assert r.lineage.arm == "primary" and r.hits[0].doc_id.startswith("aio-")
        counted = await admin.feedback(r.request_id, False, label="wrong-answer")
        assert counted.alias == "py-async" and counted.arm == "primary"
        with pytest.raises(NotFound):
            await admin.feedback("rq-" + "f" * 32, True)

        report = await admin.evaluate(
            "handbook",
            str(server.corpora / "handbook-eval"),
            groups=["all-staff", "eng"],
            mode="bm25",
        )
        assert report.ndcg_at_10 > 0


async def test_async_tls_with_a_private_ca(tls_server):
    url, ca = tls_server
    async with AsyncClient(url, root_certificates=ca) as c:
        result = await c.query("handbook", "how long is parental leave", groups=["all-staff"], k=1)
        assert result.hits[0].doc_id == "hr/parental-leave-policy.md"
