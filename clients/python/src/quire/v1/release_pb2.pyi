from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetCanary(_message.Message):
    __slots__ = ("index", "percent")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    index: str
    percent: float
    def __init__(self, index: _Optional[str] = ..., percent: _Optional[float] = ...) -> None: ...

class Rollback(_message.Message):
    __slots__ = ("to_revision",)
    TO_REVISION_FIELD_NUMBER: _ClassVar[int]
    to_revision: int
    def __init__(self, to_revision: _Optional[int] = ...) -> None: ...

class ChangeAliasRequest(_message.Message):
    __slots__ = ("alias", "reason", "set", "canary", "clear_canary", "shadow", "clear_shadow", "promote", "rollback", "clear_gate", "auto_rollback", "clear_auto_rollback", "force")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    CLEAR_CANARY_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    CLEAR_SHADOW_FIELD_NUMBER: _ClassVar[int]
    PROMOTE_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    CLEAR_GATE_FIELD_NUMBER: _ClassVar[int]
    AUTO_ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    CLEAR_AUTO_ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    alias: str
    reason: str
    set: str
    canary: SetCanary
    clear_canary: Empty
    shadow: str
    clear_shadow: Empty
    promote: Empty
    rollback: Rollback
    clear_gate: Empty
    auto_rollback: str
    clear_auto_rollback: Empty
    force: bool
    def __init__(self, alias: _Optional[str] = ..., reason: _Optional[str] = ..., set: _Optional[str] = ..., canary: _Optional[_Union[SetCanary, _Mapping]] = ..., clear_canary: _Optional[_Union[Empty, _Mapping]] = ..., shadow: _Optional[str] = ..., clear_shadow: _Optional[_Union[Empty, _Mapping]] = ..., promote: _Optional[_Union[Empty, _Mapping]] = ..., rollback: _Optional[_Union[Rollback, _Mapping]] = ..., clear_gate: _Optional[_Union[Empty, _Mapping]] = ..., auto_rollback: _Optional[str] = ..., clear_auto_rollback: _Optional[_Union[Empty, _Mapping]] = ..., force: _Optional[bool] = ...) -> None: ...

class GatePolicy(_message.Message):
    __slots__ = ("eval_spec", "mode", "min_ndcg10", "max_regression")
    EVAL_SPEC_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MIN_NDCG10_FIELD_NUMBER: _ClassVar[int]
    MAX_REGRESSION_FIELD_NUMBER: _ClassVar[int]
    eval_spec: str
    mode: str
    min_ndcg10: float
    max_regression: float
    def __init__(self, eval_spec: _Optional[str] = ..., mode: _Optional[str] = ..., min_ndcg10: _Optional[float] = ..., max_regression: _Optional[float] = ...) -> None: ...

class Canary(_message.Message):
    __slots__ = ("index_id", "basis_points")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    BASIS_POINTS_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    basis_points: int
    def __init__(self, index_id: _Optional[str] = ..., basis_points: _Optional[int] = ...) -> None: ...

class AliasRevision(_message.Message):
    __slots__ = ("alias", "revision", "time", "actor", "reason", "action", "primary", "canary", "shadow", "policy", "auto_rollback")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    AUTO_ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    alias: str
    revision: int
    time: str
    actor: str
    reason: str
    action: str
    primary: str
    canary: Canary
    shadow: str
    policy: GatePolicy
    auto_rollback: str
    def __init__(self, alias: _Optional[str] = ..., revision: _Optional[int] = ..., time: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., action: _Optional[str] = ..., primary: _Optional[str] = ..., canary: _Optional[_Union[Canary, _Mapping]] = ..., shadow: _Optional[str] = ..., policy: _Optional[_Union[GatePolicy, _Mapping]] = ..., auto_rollback: _Optional[str] = ...) -> None: ...

class GetAliasRequest(_message.Message):
    __slots__ = ("alias",)
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    alias: str
    def __init__(self, alias: _Optional[str] = ...) -> None: ...

class ListAliasesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AliasHistoryResponse(_message.Message):
    __slots__ = ("revisions",)
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    revisions: _containers.RepeatedCompositeFieldContainer[AliasRevision]
    def __init__(self, revisions: _Optional[_Iterable[_Union[AliasRevision, _Mapping]]] = ...) -> None: ...

class Distribution(_message.Message):
    __slots__ = ("count", "mean", "min", "p50", "p90", "p99", "max")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    P50_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    count: int
    mean: float
    min: float
    p50: float
    p90: float
    p99: float
    max: float
    def __init__(self, count: _Optional[int] = ..., mean: _Optional[float] = ..., min: _Optional[float] = ..., p50: _Optional[float] = ..., p90: _Optional[float] = ..., p99: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class ShadowReportResponse(_message.Message):
    __slots__ = ("alias", "shadow_index", "since", "compared", "dropped", "failed", "jaccard", "rbo", "latency_delta_us")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_INDEX_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    COMPARED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    JACCARD_FIELD_NUMBER: _ClassVar[int]
    RBO_FIELD_NUMBER: _ClassVar[int]
    LATENCY_DELTA_US_FIELD_NUMBER: _ClassVar[int]
    alias: str
    shadow_index: str
    since: str
    compared: int
    dropped: int
    failed: int
    jaccard: Distribution
    rbo: Distribution
    latency_delta_us: Distribution
    def __init__(self, alias: _Optional[str] = ..., shadow_index: _Optional[str] = ..., since: _Optional[str] = ..., compared: _Optional[int] = ..., dropped: _Optional[int] = ..., failed: _Optional[int] = ..., jaccard: _Optional[_Union[Distribution, _Mapping]] = ..., rbo: _Optional[_Union[Distribution, _Mapping]] = ..., latency_delta_us: _Optional[_Union[Distribution, _Mapping]] = ...) -> None: ...

class PinRequest(_message.Message):
    __slots__ = ("index", "holder", "expires", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: str
    holder: str
    expires: str
    reason: str
    def __init__(self, index: _Optional[str] = ..., holder: _Optional[str] = ..., expires: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UnpinRequest(_message.Message):
    __slots__ = ("index", "holder", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: str
    holder: str
    reason: str
    def __init__(self, index: _Optional[str] = ..., holder: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PinInfo(_message.Message):
    __slots__ = ("index_id", "holder", "created", "expires", "actor", "reason")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    holder: str
    created: str
    expires: str
    actor: str
    reason: str
    def __init__(self, index_id: _Optional[str] = ..., holder: _Optional[str] = ..., created: _Optional[str] = ..., expires: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListPinsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPinsResponse(_message.Message):
    __slots__ = ("pins",)
    PINS_FIELD_NUMBER: _ClassVar[int]
    pins: _containers.RepeatedCompositeFieldContainer[PinInfo]
    def __init__(self, pins: _Optional[_Iterable[_Union[PinInfo, _Mapping]]] = ...) -> None: ...

class GcRequest(_message.Message):
    __slots__ = ("dry_run", "reason")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    reason: str
    def __init__(self, dry_run: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class KeptIndex(_message.Message):
    __slots__ = ("index_id", "reasons")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, index_id: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class DeletedUpload(_message.Message):
    __slots__ = ("index_id", "content_digest", "objects")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    content_digest: str
    objects: int
    def __init__(self, index_id: _Optional[str] = ..., content_digest: _Optional[str] = ..., objects: _Optional[int] = ...) -> None: ...

class DeletedPacks(_message.Message):
    __slots__ = ("namespace", "packs")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    PACKS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    packs: int
    def __init__(self, namespace: _Optional[str] = ..., packs: _Optional[int] = ...) -> None: ...

class GcResponse(_message.Message):
    __slots__ = ("dry_run", "deleted_indexes", "deleted_snapshots", "kept", "deleted_uploads", "deleted_packs")
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    DELETED_INDEXES_FIELD_NUMBER: _ClassVar[int]
    DELETED_SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    DELETED_UPLOADS_FIELD_NUMBER: _ClassVar[int]
    DELETED_PACKS_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    deleted_indexes: _containers.RepeatedScalarFieldContainer[str]
    deleted_snapshots: _containers.RepeatedScalarFieldContainer[str]
    kept: _containers.RepeatedCompositeFieldContainer[KeptIndex]
    deleted_uploads: _containers.RepeatedCompositeFieldContainer[DeletedUpload]
    deleted_packs: _containers.RepeatedCompositeFieldContainer[DeletedPacks]
    def __init__(self, dry_run: _Optional[bool] = ..., deleted_indexes: _Optional[_Iterable[str]] = ..., deleted_snapshots: _Optional[_Iterable[str]] = ..., kept: _Optional[_Iterable[_Union[KeptIndex, _Mapping]]] = ..., deleted_uploads: _Optional[_Iterable[_Union[DeletedUpload, _Mapping]]] = ..., deleted_packs: _Optional[_Iterable[_Union[DeletedPacks, _Mapping]]] = ...) -> None: ...

class DeleteIndexRequest(_message.Message):
    __slots__ = ("index", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: str
    reason: str
    def __init__(self, index: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteIndexResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
