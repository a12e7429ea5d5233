"""Store wrappers of the testing kit: replay after every write, count writes, crash at one.

Each wrapper delegates every :class:`~durable_core.stores.base.Store` method to the store it
wraps and changes only ``write_operations`` (the engine's checkpoint write), so the engine
under test is the real one.

Invariants:
- :class:`ReplayBoundaryStore` raises :class:`~durable_core.errors.ReplayBoundary` only
  *after* a write succeeded, and never after a write that marks an at-most-once step
  attempt STARTED: restarting there would make the attempt look interrupted, which is a
  crash, not a replay.
- :class:`CrashingStore` raises :class:`~durable_core.errors.SimulatedCrash` exactly once,
  at the chosen write, either before anything is written or right after the write
  committed. The lease stays held, as when a process is killed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from durable_core.errors import ReplayBoundary, SimulatedCrash
from durable_core.records import (
    CallbackOutcome,
    Execution,
    ExecutionStatus,
    Lease,
    Operation,
    OperationStatus,
    OperationType,
    StopRequest,
)
from durable_core.stores.audit import AuditEntry, AuditPage
from durable_core.stores.base import InvocationEnd, Store
from durable_core.stores.search import ExecutionPage, ExecutionQuery


def describe_write(operations: Sequence[Operation]) -> str:
    """A short description of one checkpoint write, e.g. ``step 'charge' SUCCEEDED``."""
    return ", ".join(
        f"{op.type.value.lower()} {op.name!r} {op.status.value}"
        + (f" (attempt {op.attempt})" if op.attempt > 1 else "")
        for op in operations
    )


class DelegatingStore:
    """A :class:`~durable_core.stores.base.Store` that forwards every call to ``inner``."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def create_execution(self, execution: Execution) -> tuple[Execution, bool]:
        return self.inner.create_execution(execution)

    def get_execution(self, execution_id: str) -> Execution:
        return self.inner.get_execution(execution_id)

    def list_executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[Execution]:
        return self.inner.list_executions(status=status, limit=limit)

    def search_executions(self, query: ExecutionQuery) -> ExecutionPage:
        return self.inner.search_executions(query)

    def append_audit(self, entry: AuditEntry) -> None:
        self.inner.append_audit(entry)

    def list_audit(self, *, cursor: str | None = None, limit: int = 50) -> AuditPage:
        return self.inner.list_audit(cursor=cursor, limit=limit)

    def load_operations(self, execution_id: str) -> list[Operation]:
        return self.inner.load_operations(execution_id)

    def acquire_lease(
        self, execution_id: str, owner: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        return self.inner.acquire_lease(execution_id, owner, now, ttl)

    def claim_due(self, owner: str, now: datetime, ttl: timedelta, limit: int) -> list[Lease]:
        return self.inner.claim_due(owner, now, ttl, limit)

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        return self.inner.renew_lease(lease, now, ttl)

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        return self.inner.write_operations(lease, operations, now, ttl)

    def finish_invocation(self, lease: Lease, end: InvocationEnd, now: datetime) -> Execution:
        return self.inner.finish_invocation(lease, end, now)

    def release_lease(self, lease: Lease) -> None:
        self.inner.release_lease(lease)

    def complete_callback(
        self,
        callback_id: str,
        outcome: CallbackOutcome,
        now: datetime,
        *,
        privileged: bool = False,
    ) -> Operation:
        return self.inner.complete_callback(callback_id, outcome, now, privileged=privileged)

    def heartbeat_callback(self, callback_id: str, now: datetime) -> Operation:
        return self.inner.heartbeat_callback(callback_id, now)

    def request_stop(self, execution_id: str, request: StopRequest, now: datetime) -> Execution:
        return self.inner.request_stop(execution_id, request, now)

    def close(self) -> None:
        self.inner.close()


def _starts_at_most_once_attempt(operations: Sequence[Operation]) -> bool:
    return any(
        op.type is OperationType.STEP and op.status is OperationStatus.STARTED for op in operations
    )


class ReplayBoundaryStore(DelegatingStore):
    """Always-replay mode: after each checkpoint write, restart the function from the top."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.boundaries = 0
        """How many times the function was restarted."""

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        lease = self.inner.write_operations(lease, operations, now, ttl)
        if _starts_at_most_once_attempt(operations):
            return lease
        self.boundaries += 1
        raise ReplayBoundary(f"replay after writing {describe_write(operations)}")


class CountingStore(DelegatingStore):
    """Counts checkpoint writes and remembers what each one recorded."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.writes: list[str] = []
        """One description per successful ``write_operations`` call, in order."""

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        lease = self.inner.write_operations(lease, operations, now, ttl)
        self.writes.append(describe_write(operations))
        return lease


class CrashPoint(StrEnum):
    """Where, relative to a checkpoint write, the crash checker kills the worker."""

    BEFORE_WRITE = "before"
    """The process dies just before the write: nothing of it reaches the store."""
    AFTER_WRITE = "after"
    """The process dies just after the write committed, before the code sees it."""


class CrashingStore(DelegatingStore):
    """Raises SimulatedCrash once, at the ``crash_at``-th write (1-based), at ``point``."""

    def __init__(self, inner: Store, *, crash_at: int, point: CrashPoint) -> None:
        super().__init__(inner)
        self.crash_at = crash_at
        self.point = point
        self.calls = 0
        self.crashed = False

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        self.calls += 1
        armed = not self.crashed and self.calls == self.crash_at
        if armed and self.point is CrashPoint.BEFORE_WRITE:
            self.crashed = True
            raise SimulatedCrash(f"crash before write {self.calls}")
        lease = self.inner.write_operations(lease, operations, now, ttl)
        if armed:
            self.crashed = True
            raise SimulatedCrash(f"crash after write {self.calls}")
        return lease
