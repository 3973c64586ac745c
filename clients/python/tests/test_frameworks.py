"""The LangChain and LlamaIndex retrievers, against the real packages and server."""

from __future__ import annotations

import pytest

from quire import AsyncClient, PermissionDenied

HERON = "Project Heron proposed price acquisition"


def _check_lineage(metadata: dict, manifest) -> None:
    lineage = metadata["lineage"]
    assert lineage["index_id"] == manifest.index_id
    assert lineage["content_digest"] == manifest.content_digest
    assert lineage["snapshot_id"] == manifest.snapshot_id
    assert lineage["alias"] == "handbook"
    assert metadata["request_id"]


def test_langchain_retriever(clients):
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from quire.langchain import QuireRetriever

    reader = clients["reader"]
    manifest = reader.index("handbook")
    retriever = QuireRetriever(client=reader, target="handbook", groups=["all-staff"], k=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("how long is parental leave")
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    assert docs[0].metadata["doc_id"] == "hr/parental-leave-policy.md"
    assert docs[0].id == docs[0].metadata["chunk_id"] and docs[0].page_content
    _check_lineage(docs[0].metadata, manifest)

    staff = QuireRetriever(client=reader, target="handbook", groups=["all-staff"], k=50).invoke(
        HERON
    )
    assert not any(d.metadata["doc_id"].startswith("execs/") for d in staff)
    execs = QuireRetriever(client=reader, target="handbook", groups=["execs"], mode="bm25").invoke(
        HERON
    )
    assert any(d.metadata["doc_id"].startswith("execs/") for d in execs)

    with pytest.raises(PermissionDenied):
        QuireRetriever(client=clients["sam"], target="handbook", groups=["execs"]).invoke(HERON)
    with pytest.raises(ValueError):
        QuireRetriever(target="handbook")


async def test_langchain_retriever_async(server, clients):
    from quire.langchain import QuireRetriever

    manifest = clients["reader"].index("handbook")
    async with AsyncClient(server.url, token=server.tokens["reader"]) as reader:
        retriever = QuireRetriever(
            async_client=reader, target="handbook", groups=["all-staff"], k=2, explain=True
        )
        docs = await retriever.ainvoke("how long is parental leave")
        assert len(docs) == 2 and docs[0].metadata["doc_id"] == "hr/parental-leave-policy.md"
        assert "bm25_rank" in docs[0].metadata or "vector_rank" in docs[0].metadata
        _check_lineage(docs[0].metadata, manifest)
    # With only a sync client, ainvoke runs it in a thread.
    sync_only = QuireRetriever(
        client=clients["reader"], target="handbook", groups=["all-staff"], k=2
    )
    assert [d.id for d in await sync_only.ainvoke("how long is parental leave")] == [
        d.id for d in docs
    ]


def test_langchain_retriever_pins_an_alias_revision(clients):
    from quire.langchain import QuireRetriever

    releaser = clients["releaser"]
    index = releaser.index("handbook").index_id
    rev = releaser.alias_set("py-lc", index, reason="langchain pin test")
    docs = QuireRetriever(
        client=releaser, target="py-lc", revision=rev.revision, groups=["all-staff"]
    ).invoke("parental leave")
    assert docs and docs[0].metadata["lineage"]["alias"] == "py-lc"
    assert docs[0].metadata["lineage"]["revision"] == rev.revision
    with pytest.raises(ValueError):
        QuireRetriever(client=releaser, target="py-lc@1", revision=1)


def test_llama_index_retriever(clients):
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeRelationship, NodeWithScore

    from quire.llama_index import QuireRetriever

    reader = clients["reader"]
    manifest = reader.index("handbook")
    retriever = QuireRetriever(client=reader, target="handbook", groups=["all-staff"], k=3)
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve("how long is parental leave")
    assert len(nodes) == 3 and all(isinstance(n, NodeWithScore) for n in nodes)
    top = nodes[0]
    assert top.node.metadata["doc_id"] == "hr/parental-leave-policy.md"
    assert top.node.node_id == top.node.metadata["chunk_id"]
    assert top.node.relationships[NodeRelationship.SOURCE].node_id == "hr/parental-leave-policy.md"
    assert top.score == top.node.metadata["score"] and top.node.get_content()
    _check_lineage(top.node.metadata, manifest)

    staff = QuireRetriever(client=reader, target="handbook", groups=["all-staff"], k=50).retrieve(
        HERON
    )
    assert not any(n.node.metadata["doc_id"].startswith("execs/") for n in staff)
    execs = QuireRetriever(
        client=reader, target="handbook", groups=["execs"], mode="bm25"
    ).retrieve(HERON)
    assert any(n.node.metadata["doc_id"].startswith("execs/") for n in execs)


async def test_llama_index_retriever_async(server, clients):
    from quire.llama_index import QuireRetriever

    manifest = clients["reader"].index("handbook")
    async with AsyncClient(server.url, token=server.tokens["reader"]) as reader:
        retriever = QuireRetriever(
            async_client=reader, target="handbook", groups=["all-staff"], k=2
        )
        nodes = await retriever.aretrieve("how long is parental leave")
        assert len(nodes) == 2 and nodes[0].node.metadata["doc_id"] == "hr/parental-leave-policy.md"
        _check_lineage(nodes[0].node.metadata, manifest)
        staff = await QuireRetriever(
            async_client=reader, target="handbook", groups=["all-staff"], k=50
        ).aretrieve(HERON)
        assert not any(n.node.metadata["doc_id"].startswith("execs/") for n in staff)
