from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BuildIndexRequest(_message.Message):
    __slots__ = ("snapshot_id", "spec_toml")
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_TOML_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: str
    spec_toml: str
    def __init__(self, snapshot_id: _Optional[str] = ..., spec_toml: _Optional[str] = ...) -> None: ...

class BuildStage(_message.Message):
    __slots__ = ("name", "total")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    total: int
    def __init__(self, name: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class BuildAdvance(_message.Message):
    __slots__ = ("done",)
    DONE_FIELD_NUMBER: _ClassVar[int]
    done: int
    def __init__(self, done: _Optional[int] = ...) -> None: ...

class BuildEmbedCache(_message.Message):
    __slots__ = ("hits", "misses")
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    hits: int
    misses: int
    def __init__(self, hits: _Optional[int] = ..., misses: _Optional[int] = ...) -> None: ...

class BuildReused(_message.Message):
    __slots__ = ("stage", "from_index")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FROM_INDEX_FIELD_NUMBER: _ClassVar[int]
    stage: str
    from_index: str
    def __init__(self, stage: _Optional[str] = ..., from_index: _Optional[str] = ...) -> None: ...

class BuildIndexEvent(_message.Message):
    __slots__ = ("queued", "stage", "advance", "result", "embed_cache", "reused")
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ADVANCE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    EMBED_CACHE_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    queued: int
    stage: BuildStage
    advance: BuildAdvance
    result: BuildResult
    embed_cache: BuildEmbedCache
    reused: BuildReused
    def __init__(self, queued: _Optional[int] = ..., stage: _Optional[_Union[BuildStage, _Mapping]] = ..., advance: _Optional[_Union[BuildAdvance, _Mapping]] = ..., result: _Optional[_Union[BuildResult, _Mapping]] = ..., embed_cache: _Optional[_Union[BuildEmbedCache, _Mapping]] = ..., reused: _Optional[_Union[BuildReused, _Mapping]] = ...) -> None: ...

class BuildResult(_message.Message):
    __slots__ = ("manifest", "reused", "unreadable_documents")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    UNREADABLE_DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    manifest: IndexManifest
    reused: bool
    unreadable_documents: int
    def __init__(self, manifest: _Optional[_Union[IndexManifest, _Mapping]] = ..., reused: _Optional[bool] = ..., unreadable_documents: _Optional[int] = ...) -> None: ...

class IndexManifest(_message.Message):
    __slots__ = ("index_id", "content_digest", "snapshot_id", "documents", "chunks", "embedding_model", "manifest_json", "stale")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_JSON_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    content_digest: str
    snapshot_id: str
    documents: int
    chunks: int
    embedding_model: str
    manifest_json: str
    stale: bool
    def __init__(self, index_id: _Optional[str] = ..., content_digest: _Optional[str] = ..., snapshot_id: _Optional[str] = ..., documents: _Optional[int] = ..., chunks: _Optional[int] = ..., embedding_model: _Optional[str] = ..., manifest_json: _Optional[str] = ..., stale: _Optional[bool] = ...) -> None: ...

class GetIndexRequest(_message.Message):
    __slots__ = ("target",)
    TARGET_FIELD_NUMBER: _ClassVar[int]
    target: str
    def __init__(self, target: _Optional[str] = ...) -> None: ...

class ListIndexesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IndexSummary(_message.Message):
    __slots__ = ("index_id", "content_digest", "snapshot_id", "documents", "chunks", "model", "built_at", "source_freshness", "stale")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BUILT_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FRESHNESS_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    content_digest: str
    snapshot_id: str
    documents: int
    chunks: int
    model: str
    built_at: str
    source_freshness: str
    stale: bool
    def __init__(self, index_id: _Optional[str] = ..., content_digest: _Optional[str] = ..., snapshot_id: _Optional[str] = ..., documents: _Optional[int] = ..., chunks: _Optional[int] = ..., model: _Optional[str] = ..., built_at: _Optional[str] = ..., source_freshness: _Optional[str] = ..., stale: _Optional[bool] = ...) -> None: ...

class ListIndexesResponse(_message.Message):
    __slots__ = ("indexes",)
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    indexes: _containers.RepeatedCompositeFieldContainer[IndexSummary]
    def __init__(self, indexes: _Optional[_Iterable[_Union[IndexSummary, _Mapping]]] = ...) -> None: ...

class VerifyIndexRequest(_message.Message):
    __slots__ = ("target",)
    TARGET_FIELD_NUMBER: _ClassVar[int]
    target: str
    def __init__(self, target: _Optional[str] = ...) -> None: ...

class VerifyIndexResponse(_message.Message):
    __slots__ = ("index_id", "ok", "content_digest", "problems")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    ok: bool
    content_digest: str
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, index_id: _Optional[str] = ..., ok: _Optional[bool] = ..., content_digest: _Optional[str] = ..., problems: _Optional[_Iterable[str]] = ...) -> None: ...

class RebuildCheckRequest(_message.Message):
    __slots__ = ("target",)
    TARGET_FIELD_NUMBER: _ClassVar[int]
    target: str
    def __init__(self, target: _Optional[str] = ...) -> None: ...

class RebuildCheckResponse(_message.Message):
    __slots__ = ("ok", "index_id", "rebuilt_index_id", "content_digest", "rebuilt_content_digest", "differing_files", "notes")
    OK_FIELD_NUMBER: _ClassVar[int]
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    REBUILT_INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    REBUILT_CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DIFFERING_FILES_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    index_id: str
    rebuilt_index_id: str
    content_digest: str
    rebuilt_content_digest: str
    differing_files: _containers.RepeatedScalarFieldContainer[str]
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ok: _Optional[bool] = ..., index_id: _Optional[str] = ..., rebuilt_index_id: _Optional[str] = ..., content_digest: _Optional[str] = ..., rebuilt_content_digest: _Optional[str] = ..., differing_files: _Optional[_Iterable[str]] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...
