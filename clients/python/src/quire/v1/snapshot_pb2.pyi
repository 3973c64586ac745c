from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CorpusFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CORPUS_FORMAT_UNSPECIFIED: _ClassVar[CorpusFormat]
    CORPUS_FORMAT_JSONL: _ClassVar[CorpusFormat]
    CORPUS_FORMAT_BEIR: _ClassVar[CorpusFormat]
    CORPUS_FORMAT_DIR: _ClassVar[CorpusFormat]
CORPUS_FORMAT_UNSPECIFIED: CorpusFormat
CORPUS_FORMAT_JSONL: CorpusFormat
CORPUS_FORMAT_BEIR: CorpusFormat
CORPUS_FORMAT_DIR: CorpusFormat

class ImportHeader(_message.Message):
    __slots__ = ("format", "file_name", "server_path")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    SERVER_PATH_FIELD_NUMBER: _ClassVar[int]
    format: CorpusFormat
    file_name: str
    server_path: str
    def __init__(self, format: _Optional[_Union[CorpusFormat, str]] = ..., file_name: _Optional[str] = ..., server_path: _Optional[str] = ...) -> None: ...

class ImportSnapshotRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ImportHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ImportHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("snapshot_id", "documents", "bytes", "imported_at", "source", "format")
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: str
    documents: int
    bytes: int
    imported_at: str
    source: str
    format: str
    def __init__(self, snapshot_id: _Optional[str] = ..., documents: _Optional[int] = ..., bytes: _Optional[int] = ..., imported_at: _Optional[str] = ..., source: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ("snapshot_id",)
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: str
    def __init__(self, snapshot_id: _Optional[str] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ("snapshots",)
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    snapshots: _containers.RepeatedCompositeFieldContainer[Snapshot]
    def __init__(self, snapshots: _Optional[_Iterable[_Union[Snapshot, _Mapping]]] = ...) -> None: ...
