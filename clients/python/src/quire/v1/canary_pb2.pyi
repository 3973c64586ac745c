from quire.v1 import release_pb2 as _release_pb2
from quire.v1 import retrieval_pb2 as _retrieval_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AliasReportRequest(_message.Message):
    __slots__ = ("alias", "since")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    alias: str
    since: str
    def __init__(self, alias: _Optional[str] = ..., since: _Optional[str] = ...) -> None: ...

class OutcomeRow(_message.Message):
    __slots__ = ("intent", "arm", "feedback", "successes", "success_rate", "cpu_ms_per_success", "latency_p50_us", "latency_p99_us")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    CPU_MS_PER_SUCCESS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_US_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_US_FIELD_NUMBER: _ClassVar[int]
    intent: str
    arm: str
    feedback: int
    successes: int
    success_rate: float
    cpu_ms_per_success: float
    latency_p50_us: int
    latency_p99_us: int
    def __init__(self, intent: _Optional[str] = ..., arm: _Optional[str] = ..., feedback: _Optional[int] = ..., successes: _Optional[int] = ..., success_rate: _Optional[float] = ..., cpu_ms_per_success: _Optional[float] = ..., latency_p50_us: _Optional[int] = ..., latency_p99_us: _Optional[int] = ...) -> None: ...

class AliasReportResponse(_message.Message):
    __slots__ = ("alias", "since_secs", "rows")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    SINCE_SECS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    alias: str
    since_secs: int
    rows: _containers.RepeatedCompositeFieldContainer[OutcomeRow]
    def __init__(self, alias: _Optional[str] = ..., since_secs: _Optional[int] = ..., rows: _Optional[_Iterable[_Union[OutcomeRow, _Mapping]]] = ...) -> None: ...

class EvaluateCanaryRequest(_message.Message):
    __slots__ = ("alias", "window", "per_intent", "arm")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    PER_INTENT_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    alias: str
    window: str
    per_intent: int
    arm: str
    def __init__(self, alias: _Optional[str] = ..., window: _Optional[str] = ..., per_intent: _Optional[int] = ..., arm: _Optional[str] = ...) -> None: ...

class CanaryReport(_message.Message):
    __slots__ = ("report_id", "alias", "created", "report_json")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    alias: str
    created: str
    report_json: str
    def __init__(self, report_id: _Optional[str] = ..., alias: _Optional[str] = ..., created: _Optional[str] = ..., report_json: _Optional[str] = ...) -> None: ...

class CanaryEvaluation(_message.Message):
    __slots__ = ("report", "rolled_back")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    ROLLED_BACK_FIELD_NUMBER: _ClassVar[int]
    report: CanaryReport
    rolled_back: _release_pb2.AliasRevision
    def __init__(self, report: _Optional[_Union[CanaryReport, _Mapping]] = ..., rolled_back: _Optional[_Union[_release_pb2.AliasRevision, _Mapping]] = ...) -> None: ...

class ListCanaryReportsRequest(_message.Message):
    __slots__ = ("alias",)
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    alias: str
    def __init__(self, alias: _Optional[str] = ...) -> None: ...

class ListCanaryReportsResponse(_message.Message):
    __slots__ = ("reports",)
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[CanaryReport]
    def __init__(self, reports: _Optional[_Iterable[_Union[CanaryReport, _Mapping]]] = ...) -> None: ...

class ListSamplesRequest(_message.Message):
    __slots__ = ("alias", "intent", "since", "limit")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    alias: str
    intent: str
    since: str
    limit: int
    def __init__(self, alias: _Optional[str] = ..., intent: _Optional[str] = ..., since: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class Sample(_message.Message):
    __slots__ = ("request_id", "time", "time_us", "alias", "revision", "arm", "index_id", "intent", "user", "groups", "k", "mode", "timings", "chunk_ids", "doc_ids", "query_text", "query_blake3")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_US_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_IDS_FIELD_NUMBER: _ClassVar[int]
    DOC_IDS_FIELD_NUMBER: _ClassVar[int]
    QUERY_TEXT_FIELD_NUMBER: _ClassVar[int]
    QUERY_BLAKE3_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    time: str
    time_us: int
    alias: str
    revision: int
    arm: str
    index_id: str
    intent: str
    user: str
    groups: _containers.RepeatedScalarFieldContainer[str]
    k: int
    mode: _retrieval_pb2.Mode
    timings: _retrieval_pb2.Timings
    chunk_ids: _containers.RepeatedScalarFieldContainer[str]
    doc_ids: _containers.RepeatedScalarFieldContainer[str]
    query_text: str
    query_blake3: str
    def __init__(self, request_id: _Optional[str] = ..., time: _Optional[str] = ..., time_us: _Optional[int] = ..., alias: _Optional[str] = ..., revision: _Optional[int] = ..., arm: _Optional[str] = ..., index_id: _Optional[str] = ..., intent: _Optional[str] = ..., user: _Optional[str] = ..., groups: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ..., mode: _Optional[_Union[_retrieval_pb2.Mode, str]] = ..., timings: _Optional[_Union[_retrieval_pb2.Timings, _Mapping]] = ..., chunk_ids: _Optional[_Iterable[str]] = ..., doc_ids: _Optional[_Iterable[str]] = ..., query_text: _Optional[str] = ..., query_blake3: _Optional[str] = ...) -> None: ...

class ListSamplesResponse(_message.Message):
    __slots__ = ("samples",)
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedCompositeFieldContainer[Sample]
    def __init__(self, samples: _Optional[_Iterable[_Union[Sample, _Mapping]]] = ...) -> None: ...
