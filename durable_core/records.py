"""The journal record: one shape for every backend.

An :class:`Operation` is modeled on the Lambda durable execution service's ``Operation``
(Id, ParentId, Type, SubType, Name, Status, result payload, error, attempt, timestamps and
wait/callback details), so the Lambda backend is a translation, not a second engine.

Invariants:
- Records are immutable values; a change is a new record with the same id (``evolve``).
- Payloads (``result``, ``payload``) are JSON text produced by :mod:`durable_core.serde`;
  nothing here is ever pickled.
- This module depends on pydantic and the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from durable_core.errors import DurableError, ValidationError

MAX_DURATION_S = 365 * 24 * 3600
"""The longest duration a record may hold (the longest wait, timeout or heartbeat)."""
MAX_ROLE_LENGTH = 64
"""The longest role (``Operation.role``, ``Execution.role``) a record may hold."""
MAX_COUNTER = 2**62
"""Bound of ``fence`` and ``signal_seq``: far above any real count, and incremented it still
fits a 64-bit integer column, so a corrupt value fails to parse instead of overflowing."""


class OperationType(StrEnum):
    """What kind of operation a record is (the service's ``Type``)."""

    EXECUTION = "EXECUTION"
    STEP = "STEP"
    WAIT = "WAIT"
    CALLBACK = "CALLBACK"
    CONTEXT = "CONTEXT"
    CHAINED_INVOKE = "CHAINED_INVOKE"


class OperationStatus(StrEnum):
    """Where an operation is in its life (the service's ``Status``)."""

    STARTED = "STARTED"
    PENDING = "PENDING"  # a retry or poll is scheduled at next_attempt_at
    READY = "READY"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    STOPPED = "STOPPED"

    @property
    def is_terminal(self) -> bool:
        """True once the operation can no longer change."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        OperationStatus.SUCCEEDED,
        OperationStatus.FAILED,
        OperationStatus.CANCELLED,
        OperationStatus.TIMED_OUT,
        OperationStatus.STOPPED,
    }
)


class ExecutionStatus(StrEnum):
    """The status of a whole execution."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True once the execution has finished."""
        return self is not ExecutionStatus.RUNNING


class StopKind(StrEnum):
    """Why an execution is being stopped from outside its code."""

    CANCEL = "cancel"
    """A cancel request: the code is told (sagas compensate) and the execution ends CANCELLED."""
    DEADLINE = "deadline"
    """The execution's deadline passed: delivered like a cancel."""
    TERMINATE = "terminate"
    """A terminate request: the execution ends CANCELLED; a saga stops without compensating."""

    @property
    def error_type(self) -> str:
        """The ``ErrorInfo.type`` that records this kind's delivery at an operation."""
        return _STOP_ERROR_TYPES[self]

    @classmethod
    def of_error(cls, error: ErrorInfo | None) -> StopKind | None:
        """The kind whose delivery ``error`` records, or ``None`` for any other error."""
        if error is None:
            return None
        return _STOP_KINDS.get(error.type)


_STOP_ERROR_TYPES = {
    StopKind.CANCEL: "durable_core.Cancelled",
    StopKind.DEADLINE: "durable_core.DeadlineExceeded",
    StopKind.TERMINATE: "durable_core.Terminated",
}
_STOP_KINDS = {v: k for k, v in _STOP_ERROR_TYPES.items()}
MAX_STOP_REQUESTS = 16
"""How many stop requests one execution records; later ones are refused (nothing recorded)."""
MAX_REASON_LENGTH = 2000
"""The longest reason text a stop request or an operator action may carry."""
MAX_ACTOR_LENGTH = 200
"""The longest actor (who asked) a stop request or an operator action may carry."""


class StopRequest(BaseModel):
    """A cancel or terminate request, as recorded on the execution (never overwritten)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: StopKind
    """``cancel`` or ``terminate`` (a deadline is not a request)."""
    reason: str = Field(min_length=1, max_length=MAX_REASON_LENGTH)
    """Free text for people; it never changes what happens."""
    actor: str | None = Field(default=None, max_length=MAX_ACTOR_LENGTH)
    """Who asked, as given by the caller (the CLI defaults it to user@host)."""
    requested_at: datetime


class ErrorInfo(BaseModel):
    """A recorded error: enough to re-raise it the same way on replay."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    message: str
    traceback: str | None = None
    data: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, *, with_traceback: bool = True) -> ErrorInfo:
        """Capture an exception's qualified type, message and formatted traceback (and the
        ``data`` text a library error carries, e.g. a failed callback's ``ErrorData``)."""
        import traceback as tb

        klass = type(exc)
        qualname = (
            klass.__qualname__
            if klass.__module__ == "builtins"
            else f"{klass.__module__}.{klass.__qualname__}"
        )
        trace = "".join(tb.format_exception(exc)) if with_traceback else None
        data = getattr(exc, "data", None) if isinstance(exc, DurableError) else None
        return cls(
            type=qualname,
            message=str(exc),
            traceback=trace,
            data=data if isinstance(data, str) else None,
        )


class Operation(BaseModel):
    """One journal record.

    Only the fields that matter for an operation's type are set; the rest stay ``None``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    parent_id: str | None = None
    type: OperationType
    sub_type: str | None = None
    name: str | None = None
    status: OperationStatus
    attempt: int = 0
    result: str | None = None
    """JSON text of the operation's result (step value, callback payload, child result)."""
    payload: str | None = None
    """JSON text of an input: a retried poll's state, an invoke's payload."""
    error: ErrorInfo | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    next_attempt_at: datetime | None = None
    """When a PENDING step retry or condition poll is due."""
    scheduled_end: datetime | None = None
    """When a WAIT completes."""
    callback_id: str | None = None
    """The unguessable token an external system uses to complete a CALLBACK."""
    privileged: bool | None = None
    """True for a privileged CALLBACK (``create_callback(..., privileged=True)``): the
    generic completion paths (token holders) are refused; only
    ``Runtime.send_privileged_callback_success`` completes it. Unset otherwise. Fixed at
    creation; not part of the replay check (the record governs)."""
    timeout_at: datetime | None = None
    """When a CALLBACK (or CONTEXT with a deadline) times out."""
    heartbeat_timeout_s: float | None = Field(
        default=None, gt=0, le=MAX_DURATION_S, allow_inf_nan=False
    )
    """Seconds a heartbeat keeps a CALLBACK alive (bounded: deadlines are computed from it)."""
    heartbeat_deadline: datetime | None = None
    child_execution_id: str | None = None
    """For CHAINED_INVOKE: the execution started for the invoked function."""
    tenant_id: str | None = None
    """For CHAINED_INVOKE: the tenant the function is invoked for (``invoke(tenant_id=)``)."""
    role: str | None = Field(default=None, max_length=MAX_ROLE_LENGTH)
    """What a library built on the engine says this step is (``StepConfig.role``; the saga
    library: ``saga.compensatable``, ``saga.pivot``, ``saga.retriable``). Display only:
    never compared on replay, never sent to Lambda's service, unset on older records."""

    def evolve(self, **changes: Any) -> Self:
        """Return a copy with ``changes`` applied and validated."""
        data = self.model_dump()
        data.update(changes)
        return type(self).model_validate(data)

    def heartbeaten(self, now: datetime) -> Self:
        """This callback after a heartbeat at ``now``: its deadline pushed to ``now`` plus
        its heartbeat timeout (none without one). The one rule every store applies."""
        timeout = self.heartbeat_timeout_s
        deadline = None if timeout is None else now + timedelta(seconds=timeout)
        return self.evolve(heartbeat_deadline=deadline)


class Execution(BaseModel):
    """The summary row of one execution: what runs, its status, and who holds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    function: str
    """The durable function's registered name (by default ``module:qualname``)."""
    input: str
    """JSON text of the input event."""
    status: ExecutionStatus = ExecutionStatus.RUNNING
    result: str | None = None
    error: ErrorInfo | None = None
    created_at: datetime
    updated_at: datetime
    wake_at: datetime | None = None
    """When the execution is next due to run; ``None`` while it waits for an event only."""
    waiting_for: str | None = None
    """Human-readable reason the execution is suspended (for ``durable show`` and the CLI)."""
    deadline: datetime | None = None
    """When the execution is cancelled with reason "deadline" if still running."""
    stop_requests: tuple[StopRequest, ...] = Field(default=(), max_length=MAX_STOP_REQUESTS)
    """Every cancel and terminate request, in the order they arrived. The first of each kind
    is the one that takes effect; later ones are kept as a record only."""
    version: str | None = None
    """The code version the execution started with; resuming under another fails."""
    parent_execution_id: str | None = None
    tenant_id: str | None = None
    """The tenant an invoking execution started it for (``ctx.invoke(tenant_id=)``)."""
    role: str | None = Field(default=None, max_length=MAX_ROLE_LENGTH)
    """What a library built on the engine says the execution is (``"saga"``): the part
    before the first dot of the first step ``role`` in its journal, set when an invocation
    that saw it ends and never changed after. Display only (a listing's ``saga_status``)."""
    lease_owner: str | None = None
    lease_expires: datetime | None = None
    fence: int = Field(default=0, ge=0, le=MAX_COUNTER)
    """Incremented on every lease acquisition; writes carry it so stale holders are refused."""
    signal_seq: int = Field(default=0, ge=0, le=MAX_COUNTER)
    """Incremented by every external event (callback, cancel, child finished)."""
    recovery_attempts: int = Field(default=0, ge=0, le=MAX_COUNTER)
    """Consecutive recoveries: incremented when a worker takes over a lease that expired
    while held (its holder died mid-invocation), reset to 0 when an invocation ends
    normally (``finish_invocation``). The runtime caps it (``max_recovery_attempts``)."""

    def evolve(self, **changes: Any) -> Self:
        """Return a copy with ``changes`` applied and validated."""
        data = self.model_dump()
        data.update(changes)
        return type(self).model_validate(data)

    def stop_request(self, kind: StopKind) -> StopRequest | None:
        """The request of ``kind`` that takes effect: the first one recorded."""
        return next((r for r in self.stop_requests if r.kind is kind), None)


class Lease(BaseModel):
    """Proof that one worker may advance one execution until ``expires``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    execution_id: str
    owner: str
    fence: int
    expires: datetime
    signal_seq: int = 0
    """The execution's ``signal_seq`` when the lease was taken."""


class CallbackOutcome(BaseModel):
    """How an external system completed a callback."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: OperationStatus
    result: str | None = None
    error: ErrorInfo | None = None


def role_of(operations: Iterable[Operation]) -> str | None:
    """The execution role the first step ``role`` among ``operations`` gives
    (``Execution.role``): ``"saga"`` for ``"saga.pivot"``; None if no step has one."""
    return next((op.role.partition(".")[0] for op in operations if op.role), None)


def check_reason(reason: object, action: str) -> str:
    """``reason`` if an operator request (``action``) can record it, else ValidationError."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError(
            f"{action} needs a non-empty reason (it is recorded so the next person knows "
            f"why); got {reason!r:.80}. Nothing was recorded."
        )
    if len(reason) > MAX_REASON_LENGTH or not encodable(reason):
        raise ValidationError(
            f"a {action} reason must be valid text of at most {MAX_REASON_LENGTH} characters. "
            "Nothing was recorded."
        )
    return reason


def check_actor(actor: object) -> str | None:
    """``actor`` if it can be recorded (None, or printable text of 1-200 characters)."""
    if actor is None:
        return None
    if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_ACTOR_LENGTH:
        raise ValidationError(
            f"an actor must be 1-{MAX_ACTOR_LENGTH} characters of text, got {actor!r:.80}"
        )
    if not actor.isprintable() or not encodable(actor):
        raise ValidationError(f"an actor must be printable text, got {actor!r:.80}")
    return actor


def encodable(text: str) -> bool:
    """True if ``text`` is valid Unicode (no lone surrogate), so a store can hold it."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
