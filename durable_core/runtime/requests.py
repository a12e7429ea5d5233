"""What outside parties send to executions: callback completions and stop requests.

A part of :class:`~durable_core.runtime.Runtime` (its base class), kept apart to keep modules
small. Every method validates its input first and then makes one conditional store call, so
a bad request changes nothing.

Invariants:
- The ``send_callback_*`` methods are the generic, token-holder path: they refuse a
  privileged callback (PrivilegedCallbackError, nothing changed). Only
  ``send_privileged_callback_success`` completes one; it is for the program that created the
  callback (its own validated API), never to be exposed to token holders.
- Cancel and terminate are requests of their own kind (``StopRequest``), appended to the
  execution with reason, actor and time; the first of each kind counts and a later one is
  recorded beside it. A reason is free text: it never changes what happens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError

from durable_core.errors import PayloadTooLargeError, ValidationError
from durable_core.records import (
    CallbackOutcome,
    ErrorInfo,
    Execution,
    Operation,
    OperationStatus,
    StopKind,
    StopRequest,
    check_actor,
    check_reason,
    encodable,
)
from durable_core.serde import loads_strict

if TYPE_CHECKING:
    from durable_core.clock import Clock
    from durable_core.runtime.options import RuntimeOptions
    from durable_core.serde import Serde
    from durable_core.stores.base import Store

MAX_CALLBACK_ERROR_BYTES = 32 * 1024
NO_REASON = "no reason given"
"""What a cancel request without a reason records."""


class ExecutionRequests:
    """Callback completions and stop requests, on the runtime's store and clock."""

    store: Store
    clock: Clock
    serde: Serde
    options: RuntimeOptions

    def send_callback_success(self, token: str, result: Any = None) -> Operation:
        """Complete a callback with a JSON-serializable ``result``.

        Raises:
            CallbackNotFoundError: no callback has this token.
            PrivilegedCallbackError: the callback is privileged (nothing changed).
            CallbackAlreadyCompletedError: it completed before (nothing changed).
        """
        text = self.serde.dump(result, Any, what="callback result")
        return self._complete(token, CallbackOutcome(status=OperationStatus.SUCCEEDED, result=text))

    def send_privileged_callback_success(self, token: str, result: Any = None) -> Operation:
        """Complete a callback, privileged or not, with a JSON-serializable ``result``.

        The one way to complete a callback created with ``privileged=True``. It is for the
        code that owns the callback and has validated and attributed ``result`` itself (a
        saga's operator decisions go through ``saga.operator``); holding the token must not
        be enough, so never wire this to a webhook or a generic command. A callback recorded
        without the flag (e.g. before it existed) is completed the same way.

        Raises:
            CallbackNotFoundError: no callback has this token.
            CallbackAlreadyCompletedError: it completed before (nothing changed).
        """
        text = self.serde.dump(result, Any, what="callback result")
        outcome = CallbackOutcome(status=OperationStatus.SUCCEEDED, result=text)
        return self._complete(token, outcome, privileged=True)

    def send_callback_success_json(self, token: str, payload: str) -> Operation:
        """Complete a callback with raw JSON text (validated as JSON first)."""
        if not isinstance(payload, str):
            raise ValidationError(
                f"callback payload must be JSON text (a str), got {type(payload).__name__}"
            )
        try:
            size = len(payload.encode())
        except UnicodeEncodeError as e:
            raise ValidationError(f"callback payload is not valid Unicode text: {e}") from e
        if size > self.options.max_payload_bytes:
            raise PayloadTooLargeError(
                f"callback result: payload is {size} bytes, over the limit of "
                f"{self.options.max_payload_bytes}. Send a reference to large data instead.",
                operation="callback result",
            )
        try:
            loads_strict(payload)
        except (ValueError, RecursionError) as e:
            raise ValidationError(f"callback payload is not valid JSON: {e}") from e
        return self._complete(
            token, CallbackOutcome(status=OperationStatus.SUCCEEDED, result=payload)
        )

    def send_callback_failure(
        self,
        token: str,
        message: str,
        *,
        error_type: str = "CallbackFailure",
        data: str | None = None,
    ) -> Operation:
        """Fail a callback; ``callback.result()`` raises CallbackFailedError."""
        try:
            error = ErrorInfo(type=error_type, message=message, data=data)
            size = len(error.model_dump_json())
        except (PydanticValidationError, PydanticSerializationError) as e:
            raise ValidationError(
                "callback error: message and error_type must be text, data text or None "
                f"(valid Unicode): {e}"
            ) from e
        if size > MAX_CALLBACK_ERROR_BYTES:
            raise ValidationError(f"callback error is over {MAX_CALLBACK_ERROR_BYTES} bytes")
        return self._complete(token, CallbackOutcome(status=OperationStatus.FAILED, error=error))

    def send_callback_heartbeat(self, token: str) -> Operation:
        """Tell a callback with a heartbeat timeout that the external work is alive."""
        _check_token(token)
        return self.store.heartbeat_callback(token, self.clock.now())

    def _complete(
        self, token: str, outcome: CallbackOutcome, *, privileged: bool = False
    ) -> Operation:
        _check_token(token)
        return self.store.complete_callback(token, outcome, self.clock.now(), privileged=privileged)

    def cancel(
        self, execution_id: str, reason: str | None = None, *, actor: str | None = None
    ) -> Execution:
        """Ask a running execution to stop at its next operation boundary; a saga compensates.

        The first cancel request takes effect; a later one is recorded beside it (see
        ``Execution.stop_requests``) and changes nothing. A blank ``reason`` is recorded as
        :data:`NO_REASON`. The reason is free text: it never changes what happens.

        Raises:
            ExecutionNotFoundError: no such execution.
            ExecutionNotRunningError: it already finished (nothing recorded).
            ValidationError: ``reason`` or ``actor`` is not text of a valid size.
        """
        text = (
            NO_REASON
            if reason is None or (isinstance(reason, str) and not reason.strip())
            else reason
        )
        return self._stop(execution_id, StopKind.CANCEL, text, actor)

    def terminate(self, execution_id: str, reason: str, *, actor: str | None = None) -> Execution:
        """End a running execution at its next operation boundary WITHOUT cleaning up.

        A saga stops compensating (or does not start): what is not undone stays listed by
        its status. Delivered also after a cancel, e.g. to stop a rollback in progress.

        Raises:
            ExecutionNotFoundError: no such execution.
            ExecutionNotRunningError: it already finished (nothing recorded).
            ValidationError: ``reason`` is blank (a terminate must say why), or ``reason``
                or ``actor`` is not text of a valid size.
        """
        return self._stop(execution_id, StopKind.TERMINATE, reason, actor)

    def _stop(self, execution_id: str, kind: StopKind, reason: object, actor: object) -> Execution:
        eid = check_execution_id(execution_id)
        text, who = check_reason(reason, kind.value), check_actor(actor)
        now = self.clock.now()
        request = StopRequest(kind=kind, reason=text.strip(), actor=who, requested_at=now)
        return self.store.request_stop(eid, request, now)


def check_execution_id(eid: object) -> str:
    """``eid`` if it can name an execution, else ValidationError (nothing is written)."""
    if not isinstance(eid, str) or not eid.strip() or len(eid) > 200:
        text = repr(eid)
        shown = text if len(text) <= 80 else f"{text[:80]}... ({len(text)} characters)"
        raise ValidationError(
            f"execution id must be a str of 1-200 characters, not only spaces; got {shown}"
        )
    if not encodable(eid):
        raise ValidationError(f"execution id {eid!r} is not valid Unicode text (lone surrogate)")
    return eid


def _check_token(token: object) -> None:
    from durable_core.errors import CallbackNotFoundError

    if not isinstance(token, str) or not 20 <= len(token) <= 128 or not encodable(token):
        raise CallbackNotFoundError(
            "that is not a callback token (tokens are 43 URL-safe characters); check that it "
            "was copied whole"
        )
