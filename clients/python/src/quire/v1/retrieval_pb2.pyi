from quire.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODE_UNSPECIFIED: _ClassVar[Mode]
    MODE_HYBRID: _ClassVar[Mode]
    MODE_BM25: _ClassVar[Mode]
    MODE_VECTOR: _ClassVar[Mode]

class Fusion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUSION_UNSPECIFIED: _ClassVar[Fusion]
    FUSION_RRF: _ClassVar[Fusion]
    FUSION_WEIGHTED: _ClassVar[Fusion]
MODE_UNSPECIFIED: Mode
MODE_HYBRID: Mode
MODE_BM25: Mode
MODE_VECTOR: Mode
FUSION_UNSPECIFIED: Fusion
FUSION_RRF: Fusion
FUSION_WEIGHTED: Fusion

class FeedbackRequest(_message.Message):
    __slots__ = ("request_id", "success", "label")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    success: bool
    label: str
    def __init__(self, request_id: _Optional[str] = ..., success: _Optional[bool] = ..., label: _Optional[str] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("alias", "arm", "intent")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    alias: str
    arm: str
    intent: str
    def __init__(self, alias: _Optional[str] = ..., arm: _Optional[str] = ..., intent: _Optional[str] = ...) -> None: ...

class RetrieveRequest(_message.Message):
    __slots__ = ("target", "query", "principal", "k", "mode", "fusion", "candidates", "routing_key", "explain", "intent")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    ROUTING_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    target: str
    query: str
    principal: _common_pb2.Principal
    k: int
    mode: Mode
    fusion: Fusion
    candidates: int
    routing_key: str
    explain: bool
    intent: str
    def __init__(self, target: _Optional[str] = ..., query: _Optional[str] = ..., principal: _Optional[_Union[_common_pb2.Principal, _Mapping]] = ..., k: _Optional[int] = ..., mode: _Optional[_Union[Mode, str]] = ..., fusion: _Optional[_Union[Fusion, str]] = ..., candidates: _Optional[int] = ..., routing_key: _Optional[str] = ..., explain: _Optional[bool] = ..., intent: _Optional[str] = ...) -> None: ...

class RetrieverHit(_message.Message):
    __slots__ = ("rank", "score")
    RANK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    rank: int
    score: float
    def __init__(self, rank: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("chunk_id", "doc_id", "title", "text", "score", "bm25", "vector", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BM25_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    doc_id: str
    title: str
    text: str
    score: float
    bm25: RetrieverHit
    vector: RetrieverHit
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, chunk_id: _Optional[str] = ..., doc_id: _Optional[str] = ..., title: _Optional[str] = ..., text: _Optional[str] = ..., score: _Optional[float] = ..., bm25: _Optional[_Union[RetrieverHit, _Mapping]] = ..., vector: _Optional[_Union[RetrieverHit, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("embed_us", "bm25_us", "vector_us", "fusion_us", "total_us")
    EMBED_US_FIELD_NUMBER: _ClassVar[int]
    BM25_US_FIELD_NUMBER: _ClassVar[int]
    VECTOR_US_FIELD_NUMBER: _ClassVar[int]
    FUSION_US_FIELD_NUMBER: _ClassVar[int]
    TOTAL_US_FIELD_NUMBER: _ClassVar[int]
    embed_us: int
    bm25_us: int
    vector_us: int
    fusion_us: int
    total_us: int
    def __init__(self, embed_us: _Optional[int] = ..., bm25_us: _Optional[int] = ..., vector_us: _Optional[int] = ..., fusion_us: _Optional[int] = ..., total_us: _Optional[int] = ...) -> None: ...

class RetrieveResponse(_message.Message):
    __slots__ = ("hits", "lineage", "timings", "nothing_readable", "request_id", "cpu")
    HITS_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    NOTHING_READABLE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    lineage: _common_pb2.Lineage
    timings: Timings
    nothing_readable: bool
    request_id: str
    cpu: Timings
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., lineage: _Optional[_Union[_common_pb2.Lineage, _Mapping]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., nothing_readable: _Optional[bool] = ..., request_id: _Optional[str] = ..., cpu: _Optional[_Union[Timings, _Mapping]] = ...) -> None: ...
