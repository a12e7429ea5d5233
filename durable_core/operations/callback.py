"""``ctx.create_callback`` / ``ctx.wait_for_callback``: wait for an external system.

Invariants:
- The token is minted once (256 random bits from ``secrets``), recorded with the callback,
  and returned identically on every replay.
- Completion goes through the store's conditional path: the first success/failure/timeout
  wins and a second completion is rejected without changing anything.
- A callback not completed by its timeout (or heartbeat deadline) ends TIMED_OUT and raises
  :class:`~durable_core.errors.CallbackTimeoutError` on every replay.
- A stop (cancel, deadline, terminate) reaches a created callback in ``result()``, where the
  code would block, never at its creation: operations between creation and ``result()``
  replay unchanged.
- A privileged callback is recorded with ``privileged=True`` when it is created; the stores
  refuse its completion by the generic paths (token holders), so only
  ``Runtime.send_privileged_callback_success`` (and the engine's own timeouts and
  cancellations) end it. On replay the recorded record governs; the flag is never added to
  or removed from a record that exists.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from durable_core.errors import (
    CallbackError,
    CallbackFailedError,
    CallbackSubmitterError,
    CallbackTimeoutError,
    ChildContextError,
    SuspendExecution,
)
from durable_core.journal import recorded_stop
from durable_core.operations._core import InstantOp, Plan
from durable_core.operations.child import ChildOp
from durable_core.records import (
    CallbackOutcome,
    ErrorInfo,
    Operation,
    OperationStatus,
    OperationType,
)
from durable_core.replay import operation_id
from durable_core.serde import Serializer, check_type, external, load_value

if TYPE_CHECKING:
    from durable_core.journal import Journal
    from durable_core.replay import Scope, Slot

T = TypeVar("T")


def new_token() -> str:
    """An unguessable callback token: 256 bits from the OS's CSPRNG, URL-safe."""
    return secrets.token_urlsafe(32)


def callback_value(
    journal: Journal, text: str | None, type_: Any, serializer: Serializer | None, *, what: str
) -> Any:
    """The value of a callback whose caller sent ``text``: handed raw to ``serializer``, or
    read as JSON into ``type_`` (the form another program writes: ``serde.external``).
    A callback completed without a result is ``None`` for a serializer."""
    if text is None and serializer is not None:
        return None
    return load_value(
        external(journal.serde), text or "null", type_, what=what, serializer=serializer
    )


def callback_error(op: Operation, name: str) -> CallbackError:
    """The error a callback that ended ``op.status`` (not SUCCEEDED) raises: the caller's (or
    the service's) message as it is, as AWS's SDK raises it."""
    err = op.error or ErrorInfo(type="Unknown", message="")
    if op.status is OperationStatus.TIMED_OUT:
        return CallbackTimeoutError(err.message or "Callback timed out", name=name)
    return CallbackFailedError(
        err.message or "Callback failed", name=name, error_type=err.type, data=err.data
    )


class Callback(Generic[T]):
    """A handle on a created callback: send ``token`` out, then call ``result()``."""

    def __init__(
        self,
        journal: Journal,
        op_id: str,
        name: str,
        result_type: Any,
        serializer: Serializer | None = None,
    ) -> None:
        self._journal = journal
        self._op_id = op_id
        self.name = name
        self._type = result_type
        self._serializer = serializer

    @property
    def token(self) -> str:
        """The token an external system passes to complete this callback."""
        op = self._journal.get(self._op_id)
        assert op is not None
        assert op.callback_id is not None
        return op.callback_id

    def result(self) -> T:
        """The payload the external system sent; suspends until there is one.

        Raises:
            CallbackFailedError: the external system reported failure (its message is the
                caller's).
            CallbackTimeoutError: the timeout or heartbeat deadline passed first.
            ExecutionCancelledError: the execution was cancelled (or terminated, or its
                deadline passed) while the callback was not complete; recorded on the
                callback, so every replay raises it here again.
        """
        return callback_value(  # type: ignore[no-any-return]
            self._journal,
            self.text(),
            self._type,
            self._serializer,
            what=f"callback {self.name!r}",
        )

    def text(self) -> str | None:
        """The raw text the external system sent (``None``: it sent none); suspends and
        raises as :meth:`result` does."""
        journal = self._journal
        op = journal.get(self._op_id)
        assert op is not None
        if op.status is OperationStatus.STARTED:
            op = journal.refresh(self._op_id) or op
        if op.status is OperationStatus.STARTED:
            op = self._check_deadlines(op)
        if op.status is OperationStatus.STARTED:
            # The code would block here: its frontier, where a pending stop is delivered.
            journal.stop_at(op)
            op = journal.get(self._op_id) or op
        stopped = recorded_stop(op, journal.execution_id)
        if stopped is not None:
            raise stopped
        if op.status is OperationStatus.SUCCEEDED:
            return op.result
        if op.status is OperationStatus.STARTED:
            raise SuspendExecution(
                # The token completes the callback: keep it out of the execution summary row
                # (``waiting_for``), which listings show; tools read it from the operation.
                f"callback {self.name!r}",
                wake_at=_next_deadline(op),
                # Only its owner's API decides a privileged callback: for a saga, an operator.
                outcome="waiting for an operator" if op.privileged else None,
            )
        raise callback_error(op, self.name)

    def _check_deadlines(self, op: Operation) -> Operation:
        now = self._journal.now()
        reason = None
        if op.timeout_at is not None and now >= op.timeout_at:
            reason = f"no completion within the timeout (deadline {op.timeout_at.isoformat()})"
        elif op.heartbeat_deadline is not None and now >= op.heartbeat_deadline:
            reason = f"no heartbeat since {op.heartbeat_deadline.isoformat()}"
        if reason is None:
            return op
        outcome = CallbackOutcome(
            status=OperationStatus.TIMED_OUT,
            error=ErrorInfo(
                type="durable_core.CallbackTimeout",
                message=f"callback {self.name!r} timed out: {reason}",
            ),
        )
        return self._journal.complete_callback(op, outcome)


def _next_deadline(op: Operation) -> datetime | None:
    times = [t for t in (op.timeout_at, op.heartbeat_deadline) if t is not None]
    return min(times) if times else None


class CallbackOp(InstantOp[Callback[Any]]):
    """``ctx.create_callback``: create (or replay the creation of) a callback; its handle.

    Raises:
        SerializationError: ``result_type`` cannot be read from JSON (nothing recorded, no
            token minted: the external system must not act on a payload we cannot read).
    """

    op_type = OperationType.CALLBACK

    def __init__(
        self,
        scope: Scope,
        name: str,
        *,
        timeout: timedelta | None,
        heartbeat_timeout: timedelta | None,
        result_type: Any,
        privileged: bool = False,
        serializer: Serializer | None = None,
    ) -> None:
        if serializer is None:
            check_type(result_type, what=f"callback {name!r}")
        super().__init__(scope, name, "Callback")
        self.timeout = timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.result_type = result_type
        self.privileged = privileged
        self.serializer = serializer

    def finished(self, rec: Operation) -> bool:
        return True  # created: the handle is all this operation gives (result() waits)

    def replay(self, rec: Operation) -> Callback[Any]:
        return Callback(self.journal, rec.id, self.name, self.result_type, self.serializer)

    def settle(self, slot: Slot) -> Callback[Any]:
        journal = self.journal
        now = journal.now()
        timeout, heartbeat = self.timeout, self.heartbeat_timeout
        journal.checkpoint(
            Operation(
                id=slot.id,
                parent_id=slot.parent_id,
                type=OperationType.CALLBACK,
                sub_type="Callback",
                name=self.name,
                status=OperationStatus.STARTED,
                started_at=now,
                callback_id=new_token(),
                timeout_at=now + timeout if timeout is not None else None,
                heartbeat_timeout_s=heartbeat.total_seconds() if heartbeat else None,
                heartbeat_deadline=now + heartbeat if heartbeat else None,
                privileged=True if self.privileged else None,
            )
        )
        return Callback(journal, slot.id, self.name, self.result_type, self.serializer)


class WaitForCallbackOp(ChildOp[Any]):
    """``ctx.wait_for_callback``: a child context (sub-type ``WaitForCallback``) holding the
    callback and the submitter step; ``body(child_context)`` runs them and returns what
    the context records: the callback's raw text (the value, in an execution recorded
    before 0.2).

    The context records that text as it came (a JSON string, as AWS's SDK records the
    callback's pass-through value); its value is read from it on every run (by
    ``serializer``, or as JSON into ``result_type``). A failed callback or submitter raises
    the callback's error (:class:`CallbackFailedError`, :class:`CallbackTimeoutError`) or
    :class:`CallbackSubmitterError`, rebuilt from the callback's and the step's records, so
    the first run and every replay raise the same.
    """

    def __init__(
        self,
        scope: Scope,
        name: str,
        body: Callable[[Any], Any],
        make_context: Callable[[Scope], Any],
        *,
        result_type: Any,
        serializer: Serializer | None,
    ) -> None:
        super().__init__(
            scope, name, body, make_context, sub_type="WaitForCallback", result_type=str | None
        )
        self.value_type = result_type
        self.value_serializer = serializer
        self._raw = True

    def _choose_form(self, context_id: str) -> None:
        """Read the context as it was recorded: before 0.2 (its callback named after the
        operation itself) the context recorded the value, since then the raw text."""
        callback = self.journal.get(operation_id(context_id, 1))
        legacy = callback is not None and callback.name == self.name
        self.result_type = self.value_type if legacy else str | None
        self._raw = not legacy

    def _load(self, text: str) -> Any:
        if not self._raw:
            return super()._load(text)
        raw = super()._load(text)
        what = f"callback {self.name!r}"
        return callback_value(self.journal, raw, self.value_type, self.value_serializer, what=what)

    def replay(self, rec: Operation) -> Any:
        self._choose_form(rec.id)
        try:
            return super().replay(rec)
        except ChildContextError as e:
            raise self._error(rec.id, e) from None

    def execute(self, slot: Slot) -> Plan[Any]:
        self._choose_form(slot.id)
        try:
            return (yield from super().execute(slot))
        except ChildContextError as e:
            raise self._error(slot.id, e) from e.__cause__

    def _error(self, context_id: str, error: ChildContextError) -> Exception:
        """The callback's or the submitter's error, read from their records."""
        callback = self.journal.get(operation_id(context_id, 1))
        if callback is not None and callback.status in (
            OperationStatus.FAILED,
            OperationStatus.TIMED_OUT,
        ):
            return callback_error(callback, self.name)
        step = self.journal.get(operation_id(context_id, 2))
        if step is not None and step.status is OperationStatus.FAILED and step.error:
            return CallbackSubmitterError(
                step.error.message or "Callback submitter failed",
                name=self.name,
                error_type=step.error.type,
            )
        return error
