"""A LangChain retriever over quire (extra ``quire-client[langchain]``).

    from quire import Client
    from quire.langchain import QuireRetriever

    retriever = QuireRetriever(client=Client(url, token=...), target="handbook",
                               groups=["all-staff"], k=4)
    docs = retriever.invoke("how long is parental leave")
    docs[0].metadata["lineage"]["index_id"]

Each :class:`~langchain_core.documents.Document` is one chunk: ``page_content`` its text,
``id`` its chunk id, ``metadata`` the document's metadata and quire's keys (see
:func:`quire._framework.hit_metadata`), lineage included. ``ainvoke`` uses ``async_client``
when given, else runs the sync client in a thread.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, model_validator

from . import _framework
from .aio import AsyncClient
from .client import Client
from .types import Fusion, Mode, QueryResult


class QuireRetriever(BaseRetriever):
    """Retrieves the chunks of a quire index or alias that the principal may read."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: Client | None = None
    """The sync client (``invoke``; also ``ainvoke`` when no async client is given)."""
    async_client: AsyncClient | None = None
    """The asyncio client for ``ainvoke``."""
    target: str
    """An alias, an index id, or a unique prefix of one."""
    revision: int | None = None
    """Pin an alias revision (``ALIAS@REVISION``)."""
    user: str | None = None
    """The principal's user."""
    groups: list[str] = Field(default_factory=list)
    """The principal's groups."""
    user_token: str | None = None
    """An end user's signed JWT (``x-quire-user-token``), when the server reads principals
    from it."""
    k: int = 4
    mode: Mode | None = None
    fusion: Fusion | None = None
    routing_key: str | None = None
    intent: str | None = None
    explain: bool = False

    @model_validator(mode="after")
    def _needs_a_client(self) -> QuireRetriever:
        if self.client is None and self.async_client is None:
            raise ValueError("QuireRetriever needs client= or async_client=")
        _framework.target(self.target, self.revision)
        return self

    def _query_args(self, query: str) -> dict[str, Any]:
        return _framework.query_args(self, _framework.target(self.target, self.revision), query)

    @staticmethod
    def _documents(result: QueryResult) -> list[Document]:
        return [
            Document(
                id=hit.chunk_id,
                page_content=hit.text,
                metadata=_framework.hit_metadata(hit, result),
            )
            for hit in result.hits
        ]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.client is None:
            raise ValueError("QuireRetriever.invoke needs a sync client (client=); use ainvoke")
        return self._documents(self.client.query(**self._query_args(query)))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.async_client is None:
            return await super()._aget_relevant_documents(query, run_manager=run_manager)
        return self._documents(await self.async_client.query(**self._query_args(query)))
