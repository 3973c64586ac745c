"""The sync client against a real server: permissions, lineage, errors, import and build with
progress, alias operations, evaluation, and end users' JWTs."""

from __future__ import annotations

import json

import grpc
import pytest

import quire
from quire import (
    Advanced,
    BuildResult,
    Client,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Principal,
    QuireError,
    StageStarted,
    Unauthenticated,
)

HERON = "Project Heron proposed price acquisition"
EXECS_PREFIX = "execs/"


def test_a_group_without_access_sees_no_execs_document(clients):
    reader = clients["reader"]
    staff = reader.query("handbook", HERON, groups=["all-staff", "eng"], k=50)
    assert staff.hits, "all-staff should still find readable documents"
    assert not [h.doc_id for h in staff.hits if h.doc_id.startswith(EXECS_PREFIX)]
    assert all("$184 million" not in h.text for h in staff.hits)
    assert not staff.nothing_readable

    execs = reader.query("handbook", HERON, principal=Principal(groups=["execs"]), k=5, mode="bm25")
    assert any(h.doc_id.startswith(EXECS_PREFIX) for h in execs.hits)


def test_a_bound_token_reads_as_its_principal_and_cannot_widen_it(clients):
    sam = clients["sam"]
    result = sam.query("handbook", HERON, k=50)
    assert result.hits and not any(h.doc_id.startswith(EXECS_PREFIX) for h in result.hits)
    with pytest.raises(PermissionDenied) as e:
        sam.query("handbook", HERON, groups=["execs"])
    assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "execs" in e.value.message


def test_hits_and_lineage(clients):
    reader = clients["reader"]
    result = reader.query(
        "handbook", "how long is parental leave", groups=["all-staff"], k=3, explain=True
    )
    assert len(result.hits) == 3
    top = result.hits[0]
    assert top.doc_id == "hr/parental-leave-policy.md"
    assert top.chunk_id.startswith(top.doc_id) or top.chunk_id
    assert top.title and top.text
    assert top.bm25 is not None or top.vector is not None
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)

    manifest = reader.index("handbook")
    lineage = result.lineage
    assert lineage.index_id == manifest.index_id and lineage.index_id.startswith("idx-")
    assert lineage.content_digest == manifest.content_digest
    assert lineage.snapshot_id == manifest.snapshot_id and lineage.snapshot_id.startswith("snap-")
    assert lineage.embedding_model == manifest.embedding_model
    assert lineage.embedding_digest
    assert lineage.alias == "handbook"
    assert result.timings.total_us > 0
    assert result.request_id

    # By index id there is no alias in the lineage.
    by_id = reader.query(manifest.index_id, "how long is parental leave", groups=["all-staff"], k=3)
    assert by_id.lineage.alias is None and by_id.lineage.revision is None
    assert [h.chunk_id for h in by_id.hits] == [h.chunk_id for h in result.hits]
    assert manifest.manifest()["index_id"] == manifest.index_id


def test_errors_carry_code_and_message(server, clients):
    reader = clients["reader"]
    with pytest.raises(NotFound) as e:
        reader.query("no-such-index", "x", groups=["all-staff"])
    assert e.value.code == grpc.StatusCode.NOT_FOUND and "no-such-index" in e.value.message
    with pytest.raises(InvalidArgument) as e:
        reader.query("handbook", "x", groups=["all-staff"], k=100_000)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "k" in e.value.message
    with pytest.raises(ValueError):
        reader.query("handbook", "x", k=-1)
    with pytest.raises(ValueError):
        reader.query("handbook", "x", mode="semantic")
    with Client(server.url, token="not-a-token") as bad:
        with pytest.raises(Unauthenticated) as e:
            bad.query("handbook", "x", groups=["all-staff"])
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    with Client(server.url) as anonymous:
        with pytest.raises(Unauthenticated):
            anonymous.indexes()
    # A reader may not change aliases.
    with pytest.raises(PermissionDenied) as e:
        reader.alias_set("handbook-x", "handbook", reason="not allowed")
    assert isinstance(e.value, quire.AuthError) and isinstance(e.value, QuireError)


def test_unreachable_server_is_unavailable():
    with Client("http://127.0.0.1:9", timeout=5) as c:
        with pytest.raises(quire.Unavailable):
            c.indexes()


def _corpus(tag: str) -> bytes:
    lines = [
        json.dumps(
            {
                "id": f"{tag}-{i}",
                "title": f"Note {i}",
                "text": f"{tag} note {i} about the quarterly kite festival and its {i} kites",
                "acl": ["group:kites"],
            }
        )
        for i in range(40)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_import_and_build_with_progress(tmp_path, server, clients):
    builder = clients["builder"]
    path = tmp_path / "kites.jsonl"
    path.write_bytes(_corpus("sync"))
    snapshot = builder.import_corpus(path)
    assert snapshot.snapshot_id.startswith("snap-") and snapshot.documents == 40
    assert any(s.snapshot_id == snapshot.snapshot_id for s in builder.snapshots())
    # The same bytes from memory are the same snapshot.
    assert (
        builder.import_corpus(path.read_bytes(), file_name="kites.jsonl").snapshot_id
        == snapshot.snapshot_id
    )

    events = []
    result = builder.build(snapshot.snapshot_id, on_progress=events.append)
    assert isinstance(result, BuildResult) and not result.reused
    assert result.manifest.snapshot_id == snapshot.snapshot_id and result.manifest.documents == 40
    stages = [e.name for e in events if isinstance(e, StageStarted)]
    assert stages, events
    assert any(isinstance(e, Advanced) and e.done > 0 for e in events)
    assert not any(isinstance(e, BuildResult) for e in events)

    # Building again reuses the index; the iterator ends with the result.
    again = list(builder.build_events(snapshot.snapshot_id))
    assert isinstance(again[-1], BuildResult) and again[-1].reused
    assert again[-1].manifest.index_id == result.manifest.index_id
    # Leaving the iterator early ends the stream (the index exists); the client stays usable.
    events = builder.build_events(snapshot.snapshot_id)
    assert next(events) is not None
    events.close()
    assert builder.verify(result.manifest.index_id).ok
    assert any(i.index_id == result.manifest.index_id for i in builder.indexes())

    hits = builder.query(result.manifest.index_id, "kite festival", groups=["kites"], k=3).hits
    assert hits and hits[0].doc_id.startswith("sync-")
    # A reader who may read nothing of the index is told so.
    nobody = builder.query(result.manifest.index_id, "kite festival", groups=["all-staff"])
    assert nobody.hits == [] and nobody.nothing_readable

    # A server path under the import roots: the demo's corpus is the demo's snapshot.
    handbook = builder.import_server_path(str(server.corpora / "handbook"), format="dir")
    assert handbook.snapshot_id == builder.index("handbook").snapshot_id

    with pytest.raises(NotFound):
        builder.build("snap-" + "0" * 64)
    with pytest.raises(InvalidArgument):
        builder.import_corpus(b'{"id": 1}\n', file_name="bad.jsonl")
    with pytest.raises(PermissionDenied):
        clients["reader"].import_corpus(path)


def test_alias_operations(clients):
    admin = clients["admin"]
    releaser = clients["releaser"]
    old = admin.index("handbook").index_id
    builder = clients["builder"]
    snap = builder.import_corpus(_corpus("alias"), file_name="alias.jsonl")
    new = builder.build(snap.snapshot_id).manifest.index_id

    first = releaser.alias_set("py-docs", old, reason="first release")
    assert first.alias == "py-docs" and first.primary == old and first.revision >= 1
    canary = releaser.alias_canary("py-docs", new, 25, reason="try the new one")
    assert canary.revision == first.revision + 1
    assert (
        canary.canary is not None and canary.canary.index_id == new and canary.canary.percent == 25
    )
    shown = releaser.alias_show("py-docs")
    assert shown == canary

    # Queries through the alias name its revision and arm in the lineage.
    r = releaser.query(
        "py-docs", "kite festival", groups=["kites", "all-staff"], routing_key="user-1"
    )
    assert r.lineage.alias == "py-docs" and r.lineage.revision == canary.revision
    assert r.lineage.arm in ("primary", "canary")
    assert r.lineage.index_id == (new if r.lineage.arm == "canary" else old)
    counted = releaser.feedback(r.request_id, True, label="py-test")
    assert counted.alias == "py-docs" and counted.arm == r.lineage.arm
    with pytest.raises(InvalidArgument) as e:
        releaser.feedback("no-such-request", False)
    assert "request_id" in e.value.message
    with pytest.raises(NotFound):
        releaser.feedback("rq-" + "0" * 32, False)
    pinned = releaser.query(f"py-docs@{first.revision}", "parental leave", groups=["all-staff"])
    assert pinned.lineage.index_id == old and pinned.lineage.revision == first.revision

    promoted = releaser.alias_promote("py-docs", reason="canary looks good")
    assert promoted.primary == new and promoted.canary is None
    back = releaser.alias_rollback("py-docs", reason="undo")
    assert back.primary == old
    history = releaser.alias_history("py-docs")
    assert [h.revision for h in history] == [
        first.revision,
        canary.revision,
        promoted.revision,
        back.revision,
    ]
    assert [h.reason for h in history] == [
        "first release",
        "try the new one",
        "canary looks good",
        "undo",
    ]
    assert any(a.alias == "py-docs" for a in releaser.alias_list())

    with pytest.raises(NotFound):
        releaser.alias_show("py-no-such-alias")
    with pytest.raises(ValueError):
        releaser.alias_set("py-docs", old, reason="")


def test_evaluate_on_the_handbook_judgments(server, clients):
    builder = clients["builder"]
    dataset = str(server.corpora / "handbook-eval")
    report = builder.evaluate("handbook", dataset, groups=["all-staff", "eng"], mode="bm25")
    assert report.index_id == builder.index("handbook").index_id
    assert report.mode == "bm25"
    assert 0.0 < report.ndcg_at_10 <= 1.0 and 0.0 < report.mrr_at_10 <= 1.0
    assert report.eval_spec
    assert any(r.report_id == report.report_id for r in builder.eval_reports("handbook"))
    assert report.report()

    # A split the dataset has no judgments for is refused, naming the ones it has.
    with pytest.raises(quire.InvalidArgument) as e:
        builder.evaluate("handbook", dataset, split="train", groups=["all-staff"])
    assert "test" in e.value.message
    # Outside the import roots: refused without saying whether the path exists.
    with pytest.raises(PermissionDenied):
        builder.evaluate("handbook", "/etc", groups=["all-staff"])
    with pytest.raises(PermissionDenied):
        clients["reader"].evaluate("handbook", dataset, groups=["all-staff"])


def test_end_user_jwt_sets_the_principal(server):
    app_token = server.tokens["app"]
    with Client(server.url, token=app_token) as app:
        # Without a JWT the application's run_as scope (all-staff at most) holds.
        with pytest.raises(PermissionDenied):
            app.query("handbook", HERON, groups=["execs"])
        erin = server.user_jwt("erin", ["execs"])
        r = app.query("handbook", HERON, k=5, mode="bm25", user_token=erin)
        assert any(h.doc_id.startswith(EXECS_PREFIX) for h in r.hits)
    # The same JWT as the client's default.
    with Client(
        server.url, token=app_token, user_token=server.user_jwt("dave", ["all-staff"])
    ) as app:
        r = app.query("handbook", HERON, k=50)
        assert r.hits and not any(h.doc_id.startswith(EXECS_PREFIX) for h in r.hits)
        with pytest.raises(Unauthenticated) as e:
            app.query(
                "handbook",
                HERON,
                user_token=server.user_jwt("erin", ["execs"], iss="https://evil.test"),
            )
        assert "issuer" in e.value.message
    # A token without `jwt` may not present one.
    with Client(
        server.url, token=server.tokens["reader"], user_token=server.user_jwt("erin", ["execs"])
    ) as r:
        with pytest.raises(PermissionDenied):
            r.query("handbook", HERON, groups=["all-staff"])


def test_tls_with_a_private_ca(tls_server):
    url, ca = tls_server
    assert url.startswith("https://")
    with Client(url, root_certificates=ca) as c:
        result = c.query("handbook", "how long is parental leave", groups=["all-staff"], k=1)
        assert result.hits[0].doc_id == "hr/parental-leave-policy.md"
    # A client that does not trust the certificate never gets an answer.
    with Client(url, timeout=5) as c, pytest.raises(quire.Unavailable):
        c.indexes()
