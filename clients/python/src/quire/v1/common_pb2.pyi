from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Principal(_message.Message):
    __slots__ = ("user", "groups")
    USER_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    user: str
    groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user: _Optional[str] = ..., groups: _Optional[_Iterable[str]] = ...) -> None: ...

class Lineage(_message.Message):
    __slots__ = ("index_id", "content_digest", "snapshot_id", "embedding_model", "embedding_digest", "alias", "revision", "arm")
    INDEX_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    index_id: str
    content_digest: str
    snapshot_id: str
    embedding_model: str
    embedding_digest: str
    alias: str
    revision: int
    arm: str
    def __init__(self, index_id: _Optional[str] = ..., content_digest: _Optional[str] = ..., snapshot_id: _Optional[str] = ..., embedding_model: _Optional[str] = ..., embedding_digest: _Optional[str] = ..., alias: _Optional[str] = ..., revision: _Optional[int] = ..., arm: _Optional[str] = ...) -> None: ...
