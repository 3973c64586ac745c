"""What the LangChain and LlamaIndex retrievers share: the target they ask for and the metadata
each retrieved chunk carries."""

from __future__ import annotations

from typing import Any

from .types import Hit, QueryResult


def target(alias_or_index: str, revision: int | None) -> str:
    """``ALIAS@REVISION`` when a revision is pinned, else the alias or index id as given."""
    if revision is None:
        return alias_or_index
    if "@" in alias_or_index:
        raise ValueError(f"target {alias_or_index!r} already names a revision; drop `revision`")
    return f"{alias_or_index}@{revision}"


def query_args(retriever: Any, target: str, text: str) -> dict[str, Any]:
    """The :meth:`quire.Client.query` arguments of a retriever's fields."""
    return dict(
        target=target,
        text=text,
        user=retriever.user,
        groups=retriever.groups,
        k=retriever.k,
        mode=retriever.mode,
        fusion=retriever.fusion,
        routing_key=retriever.routing_key,
        intent=retriever.intent,
        explain=retriever.explain,
        user_token=retriever.user_token,
    )


def hit_metadata(hit: Hit, result: QueryResult) -> dict[str, Any]:
    """The document's own metadata, then quire's keys: ``doc_id``, ``chunk_id``, ``title``,
    ``score``, the retrievers' ranks (with ``explain``), ``request_id`` and ``lineage`` (the
    index id, content digest, snapshot, embedding model and digest, alias, revision and arm that
    answered)."""
    metadata: dict[str, Any] = dict(hit.metadata)
    metadata.update(
        doc_id=hit.doc_id,
        chunk_id=hit.chunk_id,
        title=hit.title,
        score=hit.score,
        request_id=result.request_id,
        lineage=result.lineage.to_dict(),
    )
    if hit.bm25 is not None:
        metadata["bm25_rank"] = hit.bm25.rank
    if hit.vector is not None:
        metadata["vector_rank"] = hit.vector.rank
    return metadata
