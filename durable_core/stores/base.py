"""The store seam: what every backend (memory, SQLite, DynamoDB) must do.

Two parts: :class:`JournalStore` (what one invocation's journal reads and writes) and
:class:`SchedulingStore` (what a self-hosted runtime and its workers need on top: executions,
leases, due work, ends, stop requests); a :class:`Store` is both. The Lambda durable
service backend is a JournalStore only, since the service schedules. Optional capabilities
a journal detects on its store: :class:`AssigningStore`, :class:`ScopeAnnouncingStore`.

Invariants every implementation keeps (the shared contract suite in ``tests/stores`` checks
them against each backend):

- **Durable before visible.** ``write_operations`` returns only after the records are durably
  stored; the engine lets user code depend on a result only after that.
- **Fenced writes.** Each lease acquisition increments the execution's ``fence``. Every write
  made under a lease (``write_operations``, ``renew_lease``, ``finish_invocation``) is refused
  with :class:`~durable_core.errors.LeaseLostError` unless the execution still carries that
  fence and owner, so two workers never advance one execution.
- **All or nothing.** A call either applies every record it was given or none.
- **No lost wake-ups.** External events (callback completion or heartbeat, stop requests,
  a child execution finishing) increment ``signal_seq`` and make the execution due now;
  ``finish_invocation`` keeps it due if ``signal_seq`` moved since the lease was taken.
- **Recoveries are counted.** Taking over an expired lease that was never released
  increments ``recovery_attempts``; ``finish_invocation`` resets it to 0; ``release_lease``
  leaves it as it is.
- **Insertion order.** ``load_operations`` returns records in the order they were first
  written.
- Records read back are validated; a row that fails to parse raises
  :class:`~durable_core.errors.CorruptRecordError` naming the execution and row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from durable_core.errors import (
    ExecutionNotRunningError,
    PrivilegedCallbackError,
    ValidationError,
)
from durable_core.records import (
    MAX_STOP_REQUESTS,
    CallbackOutcome,
    ErrorInfo,
    Execution,
    ExecutionStatus,
    Lease,
    Operation,
    OperationType,
    StopRequest,
)
from durable_core.stores.audit import AuditEntry, AuditPage
from durable_core.stores.search import ExecutionPage, ExecutionQuery

if TYPE_CHECKING:
    from durable_core.replay import Slot


def check_stop(ex: Execution) -> None:
    """Refuse a stop request for ``ex`` if it finished or holds the most requests allowed."""
    if ex.status.is_terminal:
        raise ExecutionNotRunningError(
            f"execution {ex.id!r} already finished ({ex.status.value}); there is nothing to "
            "stop. Nothing was recorded."
        )
    if len(ex.stop_requests) >= MAX_STOP_REQUESTS:
        raise ValidationError(
            f"execution {ex.id!r} already holds {MAX_STOP_REQUESTS} stop requests; the first "
            "cancel and the first terminate are the ones that count. Nothing was recorded."
        )


def recovered(ex: Execution) -> int:
    """``ex.recovery_attempts`` after a lease is taken: one more if the lease was still held.

    A lease is taken only when it is free or expired; one still held (``lease_owner`` set)
    expired without its holder finishing or releasing it, so that worker died (or stalled
    past the TTL) in the middle of an invocation, and this acquisition is a recovery.
    """
    return ex.recovery_attempts + (1 if ex.lease_owner is not None else 0)


def operation_json(op: Operation) -> str:
    """An operation as a store writes it: JSON without the fields that are ``None``.

    Most of an operation's fields are unset; leaving them out (they read back as their
    ``None`` default) halves a typical record and the time to validate it when a journal
    is loaded.
    """
    return op.model_dump_json(exclude_none=True)


def check_callback_access(op: Operation, execution_id: str, *, privileged: bool) -> None:
    """Refuse a generic completion or heartbeat of a privileged callback.

    Every store calls this inside the transaction that changes the callback, before it
    looks at the status, so the refusal changes nothing and says nothing about the state.

    Raises:
        PrivilegedCallbackError: ``op`` is privileged and the caller is not.
    """
    if op.privileged and not privileged:
        raise PrivilegedCallbackError(
            f"callback {op.name!r} of execution {execution_id!r} is privileged: the generic "
            "callback paths (`durable callback`, Runtime.send_callback_*, the webhook) may "
            "not complete or heartbeat it, whoever holds its token. Its owner's API does "
            "(for a saga's operator callback: `durable-saga retry|skip|resolve ID`). "
            "Nothing was changed."
        )


class InvocationEnd(BaseModel):
    """What an invocation reports when it ends: the execution's new state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: ExecutionStatus
    result: str | None = None
    error: ErrorInfo | None = None
    wake_at: datetime | None = None
    waiting_for: str | None = None
    outcome: str | None = None
    """How the code named this outcome (``compensated``, ``non-determinism``), for the
    worker's log. Stores do not keep it."""
    hint: str | None = None
    """What an operator should do about it, for the worker's log. Stores do not keep it."""
    role: str | None = None
    """The execution's role, from its journal (``Execution.role``, see
    :func:`~durable_core.records.role_of`). Stores keep the first one set: a role once
    recorded never changes."""


@runtime_checkable
class JournalStore(Protocol):
    """What one invocation's journal needs: read its execution and records, write records
    under its lease, complete a callback (timeouts, cancellations). The Lambda durable
    service backend is only this; every self-hosted store is a whole :class:`Store`."""

    def get_execution(self, execution_id: str) -> Execution:
        """Return an execution or raise ExecutionNotFoundError."""
        ...

    def load_operations(self, execution_id: str) -> list[Operation]:
        """All journal records of an execution, in first-write order."""
        ...

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        """Durably upsert journal records under ``lease`` (all or nothing) and renew it."""
        ...

    def complete_callback(
        self,
        callback_id: str,
        outcome: CallbackOutcome,
        now: datetime,
        *,
        privileged: bool = False,
    ) -> Operation:
        """Complete a STARTED callback once; wake its execution.

        ``privileged=True`` is for the engine itself (timeouts, cancellations) and for
        ``Runtime.send_privileged_callback_success``; without it a privileged callback is
        refused (:func:`check_callback_access`).

        Raises CallbackNotFoundError for an unknown token, PrivilegedCallbackError for a
        privileged callback completed without ``privileged=True``, and
        CallbackAlreadyCompletedError if it is no longer STARTED (each changing nothing).
        """
        ...


@runtime_checkable
class SchedulingStore(Protocol):
    """What a self-hosted runtime needs besides the journal: create and list executions,
    lease and claim due work, record an invocation's end, callbacks from outside, stop
    requests. On Lambda's durable service the service does all of this itself."""

    def create_execution(self, execution: Execution) -> tuple[Execution, bool]:
        """Insert ``execution`` unless one with its id exists.

        Returns the stored record and whether it was created now. Idempotent by id.
        """
        ...

    def list_executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[Execution]:
        """Newest first, optionally only those with ``status``."""
        ...

    def search_executions(self, query: ExecutionQuery) -> ExecutionPage:
        """One page of the executions ``query`` matches, newest first (``(created_at, id)``
        descending), continuing after ``query.cursor`` (see :mod:`durable_core.stores.search`).
        """
        ...

    def append_audit(self, entry: AuditEntry) -> None:
        """Durably append ``entry`` to the audit log (:mod:`durable_core.stores.audit`)."""
        ...

    def list_audit(self, *, cursor: str | None = None, limit: int = 50) -> AuditPage:
        """The audit log, newest first, ``limit`` records after ``cursor``."""
        ...

    def acquire_lease(
        self, execution_id: str, owner: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        """Take the lease of a RUNNING execution whose lease is free or expired.

        Returns ``None`` if another owner holds an unexpired lease or the execution finished.
        """
        ...

    def claim_due(self, owner: str, now: datetime, ttl: timedelta, limit: int) -> list[Lease]:
        """Lease up to ``limit`` RUNNING executions that are due (``wake_at <= now``) and free."""
        ...

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        """Extend a lease still held; LeaseLostError otherwise."""
        ...

    def finish_invocation(self, lease: Lease, end: InvocationEnd, now: datetime) -> Execution:
        """Record how the invocation ended and release the lease, atomically.

        A terminal status also wakes the parent execution (``parent_execution_id``), if any.
        """
        ...

    def release_lease(self, lease: Lease) -> None:
        """Give the lease up without changing anything else (no-op if already lost)."""
        ...

    def heartbeat_callback(self, callback_id: str, now: datetime) -> Operation:
        """Push a STARTED callback's heartbeat deadline forward; wake its execution.

        A privileged callback is refused (PrivilegedCallbackError): heartbeats come only
        through the generic paths, and a privileged callback has no heartbeat timeout.
        """
        ...

    def request_stop(self, execution_id: str, request: StopRequest, now: datetime) -> Execution:
        """Append a cancel or terminate request to a RUNNING execution and make it due now.

        Requests are only ever appended (the first of each kind takes effect; a later one is
        a record). Raises ExecutionNotFoundError, ExecutionNotRunningError if it finished,
        and ValidationError once :data:`~durable_core.records.MAX_STOP_REQUESTS` are
        recorded (nothing written).
        """
        ...

    def close(self) -> None:
        """Release resources (connections, files)."""
        ...


@runtime_checkable
class Store(JournalStore, SchedulingStore, Protocol):
    """Durable storage for executions and their journals: both parts."""


@runtime_checkable
class ScopeAnnouncingStore(Protocol):
    """Optional store capability: told about every position a scope allocates.

    The Lambda durable execution service needs a CONTEXT started before the first update
    under it, so its backend learns each context's name and type here. The journal calls it
    (``Journal.on_begin``) when its store has it.
    """

    def on_begin(self, slot: Slot, type_: OperationType, name: str, sub_type: str | None) -> None:
        """``slot`` (a scope's new or replayed position) is about to be used."""
        ...


@runtime_checkable
class StartAnnouncingStore(Protocol):
    """Optional store capability: told, without a durable write, that an attempt started.

    AWS's durable execution service shows a running step (``StepStarted``) when the handler
    sends the step's START, which AWS's own SDK does without waiting for it. Its backend
    sends the START in the background here, so an at-least-once step costs no extra round
    trip; a store without this method (memory, SQLite, DynamoDB) records nothing for it and
    so keeps one durable write per finished step. The announcement may be lost in a crash:
    nothing relies on it (an at-least-once attempt found STARTED is simply run again).
    """

    def announce_start(self, op: Operation) -> None:
        """``op`` (a STARTED record of a step attempt) has begun running; never blocks."""
        ...


@runtime_checkable
class AssigningStore(Protocol):
    """Optional store capability: the backend assigns fields when it writes records.

    The Lambda durable execution service mints a callback's id and times a wait itself, so
    the record it stores is not the record the engine wrote. ``Journal.checkpoint`` keeps the
    records such a store returns, so user code sees what was made durable. Stores without
    this method (memory, SQLite, DynamoDB) keep the records they were given.
    """

    def write_operations_assigned(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> tuple[Lease, list[Operation]]:
        """Like ``Store.write_operations``; also return the records as stored, in order."""
        ...
