"""The store seam: what every backend (memory, SQLite, DynamoDB) must do.

Invariants every implementation keeps (the shared contract suite in ``tests/stores`` checks
them against each backend):

- **Durable before visible.** ``write_operations`` returns only after the records are durably
  stored; the engine lets user code depend on a result only after that.
- **Fenced writes.** Each lease acquisition increments the execution's ``fence``. Every write
  made under a lease (``write_operations``, ``renew_lease``, ``finish_invocation``) is refused
  with :class:`~durable_core.errors.LeaseLostError` unless the execution still carries that
  fence and owner, so two workers never advance one execution.
- **All or nothing.** A call either applies every record it was given or none.
- **No lost wake-ups.** External events (callback completion or heartbeat, cancel requests,
  a child execution finishing) increment ``signal_seq`` and make the execution due now;
  ``finish_invocation`` keeps it due if ``signal_seq`` moved since the lease was taken.
- **Insertion order.** ``load_operations`` returns records in the order they were first
  written.
- Records read back are validated; a row that fails to parse raises
  :class:`~durable_core.errors.CorruptRecordError` naming the execution and row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from durable_core.journal import (
    CallbackOutcome,
    ErrorInfo,
    Execution,
    ExecutionStatus,
    Lease,
    Operation,
)


def operation_json(op: Operation) -> str:
    """An operation as a store writes it: JSON without the fields that are ``None``.

    Most of an operation's fields are unset; leaving them out (they read back as their
    ``None`` default) halves a typical record and the time to validate it when a journal
    is loaded.
    """
    return op.model_dump_json(exclude_none=True)


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


@runtime_checkable
class Store(Protocol):
    """Durable storage for executions and their journals."""

    def create_execution(self, execution: Execution) -> tuple[Execution, bool]:
        """Insert ``execution`` unless one with its id exists.

        Returns the stored record and whether it was created now. Idempotent by id.
        """
        ...

    def get_execution(self, execution_id: str) -> Execution:
        """Return an execution or raise ExecutionNotFoundError."""
        ...

    def list_executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[Execution]:
        """Newest first, optionally only those with ``status``."""
        ...

    def load_operations(self, execution_id: str) -> list[Operation]:
        """All journal records of an execution, in first-write order."""
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

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        """Durably upsert journal records under ``lease`` (all or nothing) and renew it."""
        ...

    def finish_invocation(self, lease: Lease, end: InvocationEnd, now: datetime) -> Execution:
        """Record how the invocation ended and release the lease, atomically.

        A terminal status also wakes the parent execution (``parent_execution_id``), if any.
        """
        ...

    def release_lease(self, lease: Lease) -> None:
        """Give the lease up without changing anything else (no-op if already lost)."""
        ...

    def complete_callback(
        self, callback_id: str, outcome: CallbackOutcome, now: datetime
    ) -> Operation:
        """Complete a STARTED callback once; wake its execution.

        Raises CallbackNotFoundError for an unknown token and CallbackAlreadyCompletedError
        (changing nothing) if it is no longer STARTED.
        """
        ...

    def heartbeat_callback(self, callback_id: str, now: datetime) -> Operation:
        """Push a STARTED callback's heartbeat deadline forward; wake its execution."""
        ...

    def request_cancel(self, execution_id: str, reason: str, now: datetime) -> Execution:
        """Mark a RUNNING execution for cancellation and make it due now."""
        ...

    def close(self) -> None:
        """Release resources (connections, files)."""
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
