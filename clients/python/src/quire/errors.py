"""Errors from a quire server as Python exceptions.

Every failed call raises a :class:`QuireError` subclass chosen by the gRPC status code; the
exception carries the code (:class:`grpc.StatusCode`) and the server's message, which names the
field, file or value at fault.
"""

from __future__ import annotations

import grpc


class QuireError(Exception):
    """A call to quire failed. ``code`` is the gRPC status code, ``message`` the server's text."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class InvalidArgument(QuireError):
    """The request is malformed or out of range (INVALID_ARGUMENT, OUT_OF_RANGE)."""


class NotFound(QuireError):
    """No such index, snapshot, alias or report (NOT_FOUND)."""


class AlreadyExists(QuireError):
    """ALREADY_EXISTS."""


class AuthError(QuireError):
    """Who is calling, or what they may do, refused the call."""


class Unauthenticated(AuthError):
    """No token, an unknown token, or a bad end-user JWT (UNAUTHENTICATED)."""


class PermissionDenied(AuthError):
    """The token's role or binding does not allow this call or principal (PERMISSION_DENIED)."""


class FailedPrecondition(QuireError):
    """The state does not allow the call: a held index, a failing gate (FAILED_PRECONDITION,
    ABORTED)."""


class ResourceExhausted(QuireError):
    """A limit of the server was reached (RESOURCE_EXHAUSTED)."""


class Unavailable(QuireError):
    """The server cannot be reached or is shutting down (UNAVAILABLE)."""


class DeadlineExceeded(QuireError):
    """The call took longer than its timeout (DEADLINE_EXCEEDED)."""


class Cancelled(QuireError):
    """The call was cancelled (CANCELLED)."""


class Internal(QuireError):
    """A fault of the server, or a call it does not implement (INTERNAL, UNKNOWN, DATA_LOSS,
    UNIMPLEMENTED)."""


_BY_CODE: dict[grpc.StatusCode, type[QuireError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
}


def from_rpc_error(error: grpc.RpcError) -> QuireError:
    """The :class:`QuireError` for a failed gRPC call (sync or asyncio)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    if code is None:
        code = grpc.StatusCode.UNKNOWN
    return _BY_CODE.get(code, Internal)(code, details or "")
