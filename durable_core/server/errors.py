"""The API's error body, and which library error becomes which HTTP status.

Every error answer is ``{"error": {"status": N, "code": C, "message": M}}`` with ``code``
one of ``unauthorized`` (401), ``forbidden`` (403), ``not_found`` (404), ``conflict``
(409), ``invalid`` (422), ``too_large`` (413). A message names the thing at fault and never
holds a callback token or an API key.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    DurableError,
    ExecutionConflictError,
    ExecutionNotFoundError,
    ExecutionNotParkedError,
    ExecutionNotRunningError,
    PayloadTooLargeError,
    PrivilegedCallbackError,
    SerializationError,
    ValidationError,
)

CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    422: "invalid",
}
NO_SUCH_CALLBACK = (
    "no callback is waiting on this token (unknown, mistyped, or not one this webhook may "
    "complete); check that the whole URL was copied. Nothing was changed."
)
"""The one answer for a forged token and for a privileged callback: the two must not be
told apart by a token holder."""


class ApiError(Exception):
    """An answer with an error body (raised by the routes)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> JSONResponse:
    """The JSON error body for ``status``."""
    code = CODES.get(status, "error")
    return JSONResponse({"error": {"status": status, "code": code, "message": message}}, status)


def status_of(error: DurableError) -> int:
    """The HTTP status of a library error; 500 for one that is not the caller's fault."""
    names = {cls.__name__ for cls in type(error).__mro__}
    if isinstance(error, CallbackNotFoundError | PrivilegedCallbackError | ExecutionNotFoundError):
        return 404
    if isinstance(error, PayloadTooLargeError):
        return 413
    if (
        isinstance(
            error,
            CallbackAlreadyCompletedError
            | ExecutionConflictError
            | ExecutionNotRunningError
            | ExecutionNotParkedError,
        )
        or "SagaNotParkedError" in names
    ):
        return 409
    if isinstance(error, ValidationError | SerializationError) or (
        "InvalidOperatorActionError" in names
    ):
        return 422
    return 500


def message_of(error: DurableError) -> str:
    """What to tell the caller about ``error`` (a callback's refusals say the same)."""
    if isinstance(error, CallbackNotFoundError | PrivilegedCallbackError):
        return NO_SUCH_CALLBACK
    if isinstance(error, CallbackAlreadyCompletedError):
        return "this callback was completed before; a token completes its callback once"
    if isinstance(error, ExecutionNotFoundError):
        return f"no execution with id {error.execution_id!r}"
    return str(error)
