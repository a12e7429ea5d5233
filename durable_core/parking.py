"""Parked executions: kept RUNNING with the reason a worker cannot run them, until fixed.

A worker *parks* an execution when running it could only do harm: its replay diverged from
its journal (:class:`~durable_core.errors.NonDeterminismError`), its function is not
registered with the worker or cannot be found, or it started under another version. As
Temporal fails a workflow *task* rather than the workflow, nothing is recorded as an
outcome: the execution stays RUNNING with the error on its record, and deploying fixed
code then ``retry`` resumes it where it stood. An operator may instead ``fail`` it.

Invariants:
- A parked execution is RUNNING with ``error`` set (no other RUNNING execution has one:
  every invocation that suspends clears it). Parking changes nothing in the journal.
- A parked execution is offered to workers again only after a long delay
  (``RuntimeOptions.park_retry_delay``; a version mismatch after ``version_retry_delay``),
  never in a hot loop; ``retry`` makes it due at once.
- A fail request is one journal record with the fixed id :data:`FAIL_OPERATION_ID`
  (no position id can equal it): reason, actor, time and, once the failure was raised,
  the id of the position it was raised at. Every replay raises it at that same position.
- After the failure is raised at a position, its scope allocates every later position
  from a fresh id space (:func:`fresh_space`), so what the code records afterwards (a
  saga's compensations) never collides with records the old code left at those positions,
  and a replay allocates the same fresh ids.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from durable_core.errors import (
    CorruptRecordError,
    ExecutionNotParkedError,
    ExecutionNotRunningError,
    FunctionNotFoundError,
    FunctionNotRegisteredError,
    NonDeterminismError,
    VersionMismatchError,
)
from durable_core.records import (
    MAX_ACTOR_LENGTH,
    MAX_REASON_LENGTH,
    ErrorInfo,
    Execution,
    ExecutionStatus,
    Lease,
    Operation,
    OperationStatus,
    OperationType,
    check_actor,
    check_reason,
)
from durable_core.stores.base import InvocationEnd, JournalStore, SchedulingStore, Store

FAIL_OPERATION_ID = hashlib.blake2b(b"durable:operator-fail", digest_size=16).hexdigest()
"""The id of the fail-request record (position ids hash ``"n"`` or ``"<id>-n"``: never this)."""
FAIL_OPERATION_NAME = "durable:fail"
FAIL_SUB_TYPE = "OperatorFail"


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


NON_DETERMINISM = _qualname(NonDeterminismError)
NOT_REGISTERED = _qualname(FunctionNotRegisteredError)
NOT_FOUND = _qualname(FunctionNotFoundError)
VERSION_MISMATCH = _qualname(VersionMismatchError)
PARK_KINDS = {
    NON_DETERMINISM: "non-determinism",
    NOT_REGISTERED: "function not registered",
    NOT_FOUND: "function not found",
    VERSION_MISMATCH: "version mismatch",
}
"""The recorded error type of each reason to park, and how logs and listings name it."""


class FailRequest(BaseModel):
    """An operator's request to fail a parked execution (the payload of its record)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_REASON_LENGTH)
    actor: str | None = Field(default=None, max_length=MAX_ACTOR_LENGTH)
    requested_at: datetime
    delivered_to: str | None = None
    """The id of the position the failure was raised at (set when first raised)."""
    position: str | None = None
    """That position, for people (``2``, ``3.1``)."""
    left_behind: list[str] = Field(default_factory=list)
    """Steps the old code recorded at or after a divergent position: the code that fails
    does not know them, so nothing undoes them (``OperatorFailedError.left_behind``)."""


def is_parked(ex: Execution) -> bool:
    """True if ``ex`` is parked: RUNNING with the error that stopped its worker."""
    return ex.status is ExecutionStatus.RUNNING and ex.error is not None


def park_kind(error_type: str) -> str:
    """How logs and listings name a park reason (its recorded error type)."""
    return PARK_KINDS.get(error_type, "parked")


def park_hint(error_type: str, execution_id: str) -> str:
    """What an operator does about an execution parked with ``error_type``."""
    retry = f"durable retry {execution_id}"
    if error_type == NON_DETERMINISM:
        return (
            f"deploy the code it started with (or a fix that replays its journal), then "
            f"`{retry}`; or `durable fail {execution_id} --reason ...` (a saga compensates)"
        )
    if error_type == NOT_REGISTERED:
        return (
            "register the function with the worker (`durable worker --import MODULE` or "
            f"`--allow-module PREFIX`), then `{retry}`"
        )
    if error_type == VERSION_MISMATCH:
        return "run a worker with the version it started under; it is offered again shortly"
    return f"deploy the code that defines the function, then `{retry}`"


def park_summary(error: ErrorInfo, execution_id: str) -> str:
    """The ``waiting_for`` text of a parked execution: why, and what to do."""
    hint = park_hint(error.type, execution_id)
    return f"parked: {park_kind(error.type)}: {error.message} — {hint}"


def fresh_space(space: str | None, counter: int) -> str:
    """The id space a scope switches to after the operator's failure was raised in it.

    ``operation_id`` hashes ``"<space>-<n>"``; this space contains ``!``, which no
    operation id (hex) does, so no id it yields equals one of the scope's own positions.
    """
    return f"{space or ''}!failed@{counter}"


def fail_record(request: FailRequest, now: datetime) -> Operation:
    """The journal record holding ``request``."""
    return Operation(
        id=FAIL_OPERATION_ID,
        type=OperationType.EXECUTION,
        sub_type=FAIL_SUB_TYPE,
        name=FAIL_OPERATION_NAME,
        status=OperationStatus.SUCCEEDED,
        payload=request.model_dump_json(),
        started_at=request.requested_at,
        ended_at=now,
    )


def read_fail_request(op: Operation | None, execution_id: str) -> FailRequest | None:
    """The fail request recorded in ``op`` (the record with :data:`FAIL_OPERATION_ID`)."""
    if op is None:
        return None
    try:
        return FailRequest.model_validate_json(op.payload or "")
    except PydanticValidationError as e:
        raise CorruptRecordError(
            f"the fail request of execution {execution_id!r} does not parse ({e}); the "
            "record is damaged"
        ) from e


# --- operator requests ---------------------------------------------------------------------


def _parked(store: JournalStore, execution_id: str, action: str, done: str) -> Execution:
    """The execution if it is parked now, else the error saying why ``action`` cannot apply."""
    ex = store.get_execution(execution_id)
    if ex.status.is_terminal:
        raise ExecutionNotRunningError(
            f"execution {execution_id!r} already finished ({ex.status.value}); there is "
            f"nothing to {action}"
        )
    if not is_parked(ex):
        raise ExecutionNotParkedError(
            f"execution {execution_id!r} is not parked ({ex.waiting_for or 'running'}); only a "
            f"parked execution can be {done} by an operator. Use `durable cancel` to stop "
            "one that runs."
        )
    return ex


def _lease(
    store: SchedulingStore, ex: Execution, owner: str, now: datetime, ttl: timedelta
) -> Lease:
    lease = store.acquire_lease(ex.id, owner, now, ttl)
    if lease is None:
        raise ExecutionNotParkedError(
            f"execution {ex.id!r} is being run by worker {ex.lease_owner} right now; try again "
            "when it has finished (`durable show` says if it parked again)"
        )
    return lease


def request_retry(
    store: Store,
    execution_id: str,
    *,
    actor: str | None,
    owner: str,
    now: datetime,
    ttl: timedelta,
) -> Execution:
    """Make a parked execution due now, clearing its park error (see ``Runtime.retry``)."""
    actor = check_actor(actor)
    ex = _parked(store, execution_id, "retry", "retried")
    assert ex.error is not None
    lease = _lease(store, ex, owner, now, ttl)
    who = f" by {actor}" if actor else ""
    end = InvocationEnd(
        status=ExecutionStatus.RUNNING,
        wake_at=now,
        waiting_for=f"retry requested{who} (was parked: {park_kind(ex.error.type)}); due now",
    )
    return store.finish_invocation(lease, end, now)


def request_fail(
    store: Store,
    execution_id: str,
    reason: str,
    *,
    actor: str | None,
    owner: str,
    now: datetime,
    ttl: timedelta,
) -> Execution:
    """Record an operator's fail request on an execution parked on non-determinism."""
    reason, actor = check_reason(reason, "fail"), check_actor(actor)
    ex = _parked(store, execution_id, "fail", "failed")
    assert ex.error is not None
    if ex.error.type != NON_DETERMINISM:
        raise ExecutionNotParkedError(
            f"execution {execution_id!r} is parked for {park_kind(ex.error.type)}, not "
            "non-determinism: no worker can run its code, so it cannot be failed (a saga could "
            f"not compensate). {park_hint(ex.error.type, execution_id)}; then cancel it if "
            "it must stop."
        )
    ops = store.load_operations(execution_id)
    earlier = read_fail_request(next((o for o in ops if o.id == FAIL_OPERATION_ID), None), ex.id)
    if earlier is not None:
        raise ExecutionNotParkedError(
            f"execution {execution_id!r} was already failed by {earlier.actor or 'an operator'} "
            f"({earlier.reason}); it parked again because its code diverges while it fails. "
            f"Deploy code that replays its journal, then `durable retry {execution_id}`."
        )
    request = FailRequest(reason=reason, actor=actor, requested_at=now)
    lease = _lease(store, ex, owner, now, ttl)
    lease = store.write_operations(lease, [fail_record(request, now)], now, ttl)
    who = f" by {actor}" if actor else ""
    end = InvocationEnd(
        status=ExecutionStatus.RUNNING,
        wake_at=now,
        waiting_for=f"failing{who}: {reason}; a worker raises it where the replay diverged",
    )
    return store.finish_invocation(lease, end, now)
