"""A LlamaIndex retriever over quire (extra ``quire-client[llama-index]``).

    from quire import Client
    from quire.llama_index import QuireRetriever

    retriever = QuireRetriever(client=Client(url, token=...), target="handbook",
                               groups=["all-staff"], k=4)
    nodes = retriever.retrieve("how long is parental leave")
    nodes[0].node.metadata["lineage"]["index_id"]

Each :class:`~llama_index.core.schema.NodeWithScore` holds a ``TextNode`` per chunk (``id_`` the
chunk id, ``text`` its text, the source relationship its document) with quire's score, and the
document's metadata and quire's keys, lineage included, in ``metadata``. ``aretrieve`` uses
``async_client`` when given, else calls the sync client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import (
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)

from . import _framework
from .aio import AsyncClient
from .client import Client
from .types import Fusion, Mode, QueryResult


class QuireRetriever(BaseRetriever):
    """Retrieves the chunks of a quire index or alias that the principal may read.

    ``target`` is an alias or an index id; ``revision`` pins an alias revision; ``user`` and
    ``groups`` are the principal (``user_token``: an end user's JWT instead, when the server
    reads principals from it); ``k``, ``mode``, ``fusion``, ``routing_key``, ``intent`` and
    ``explain`` are passed to :meth:`quire.Client.query`.
    """

    def __init__(
        self,
        *,
        target: str,
        client: Client | None = None,
        async_client: AsyncClient | None = None,
        revision: int | None = None,
        user: str | None = None,
        groups: Sequence[str] = (),
        user_token: str | None = None,
        k: int = 4,
        mode: Mode | None = None,
        fusion: Fusion | None = None,
        routing_key: str | None = None,
        intent: str | None = None,
        explain: bool = False,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if client is None and async_client is None:
            raise ValueError("QuireRetriever needs client= or async_client=")
        self.client = client
        self.async_client = async_client
        self.target = _framework.target(target, revision)
        self.user = user
        self.groups = list(groups)
        self.user_token = user_token
        self.k = k
        self.mode = mode
        self.fusion = fusion
        self.routing_key = routing_key
        self.intent = intent
        self.explain = explain
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _query_args(self, query_bundle: QueryBundle) -> dict[str, Any]:
        return _framework.query_args(self, self.target, query_bundle.query_str)

    @staticmethod
    def _nodes(result: QueryResult) -> list[NodeWithScore]:
        return [
            NodeWithScore(
                node=TextNode(
                    id_=hit.chunk_id,
                    text=hit.text,
                    metadata=_framework.hit_metadata(hit, result),
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=hit.doc_id)},
                ),
                score=hit.score,
            )
            for hit in result.hits
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if self.client is None:
            raise ValueError("QuireRetriever.retrieve needs a sync client (client=); use aretrieve")
        return self._nodes(self.client.query(**self._query_args(query_bundle)))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if self.async_client is None:
            return self._retrieve(query_bundle)
        return self._nodes(await self.async_client.query(**self._query_args(query_bundle)))
