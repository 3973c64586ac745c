from quire.v1 import common_pb2 as _common_pb2
from quire.v1 import release_pb2 as _release_pb2
from quire.v1 import retrieval_pb2 as _retrieval_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EvaluateRequest(_message.Message):
    __slots__ = ("target", "dataset", "split", "mode", "principal", "ignore_identical_ids")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    IGNORE_IDENTICAL_IDS_FIELD_NUMBER: _ClassVar[int]
    target: str
    dataset: str
    split: str
    mode: _retrieval_pb2.Mode
    principal: _common_pb2.Principal
    ignore_identical_ids: bool
    def __init__(self, target: _Optional[str] = ..., dataset: _Optional[str] = ..., split: _Optional[str] = ..., mode: _Optional[_Union[_retrieval_pb2.Mode, str]] = ..., principal: _Optional[_Union[_common_pb2.Principal, _Mapping]] = ..., ignore_identical_ids: _Optional[bool] = ...) -> None: ...

class EvalReport(_message.Message):
    __slots__ = ("report_id", "index_id", "eval_spec", "mode", "ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10", "created", "actor", "report_json")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    EVAL_SPEC_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    NDCG_AT_10_FIELD_NUMBER: _ClassVar[int]
    RECALL_AT_10_FIELD_NUMBER: _ClassVar[int]
    RECALL_AT_100_FIELD_NUMBER: _ClassVar[int]
    MRR_AT_10_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REPORT_JSON_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    index_id: str
    eval_spec: str
    mode: str
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    created: str
    actor: str
    report_json: str
    def __init__(self, report_id: _Optional[str] = ..., index_id: _Optional[str] = ..., eval_spec: _Optional[str] = ..., mode: _Optional[str] = ..., ndcg_at_10: _Optional[float] = ..., recall_at_10: _Optional[float] = ..., recall_at_100: _Optional[float] = ..., mrr_at_10: _Optional[float] = ..., created: _Optional[str] = ..., actor: _Optional[str] = ..., report_json: _Optional[str] = ...) -> None: ...

class ListReportsRequest(_message.Message):
    __slots__ = ("target",)
    TARGET_FIELD_NUMBER: _ClassVar[int]
    target: str
    def __init__(self, target: _Optional[str] = ...) -> None: ...

class ListReportsResponse(_message.Message):
    __slots__ = ("reports",)
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[EvalReport]
    def __init__(self, reports: _Optional[_Iterable[_Union[EvalReport, _Mapping]]] = ...) -> None: ...

class GateRequest(_message.Message):
    __slots__ = ("alias", "eval", "min_ndcg10", "max_regression", "reason")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    EVAL_FIELD_NUMBER: _ClassVar[int]
    MIN_NDCG10_FIELD_NUMBER: _ClassVar[int]
    MAX_REGRESSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    alias: str
    eval: EvaluateRequest
    min_ndcg10: float
    max_regression: float
    reason: str
    def __init__(self, alias: _Optional[str] = ..., eval: _Optional[_Union[EvaluateRequest, _Mapping]] = ..., min_ndcg10: _Optional[float] = ..., max_regression: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class RebaselineRequest(_message.Message):
    __slots__ = ("alias", "eval", "reason")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    EVAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    alias: str
    eval: EvaluateRequest
    reason: str
    def __init__(self, alias: _Optional[str] = ..., eval: _Optional[_Union[EvaluateRequest, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...
