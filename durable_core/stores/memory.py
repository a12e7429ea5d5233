"""In-process store for tests and the testing kit.

Keeps the same invariants as the durable stores (see :mod:`durable_core.stores.base`),
except durability across processes. Thread-safe: one lock guards everything.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    ExecutionNotFoundError,
    LeaseLostError,
)
from durable_core.records import (
    CallbackOutcome,
    Execution,
    ExecutionStatus,
    Lease,
    Operation,
    OperationStatus,
    StopRequest,
)
from durable_core.stores.audit import AuditEntry, AuditPage, check_audit_cursor
from durable_core.stores.base import InvocationEnd, check_callback_access, check_stop, recovered
from durable_core.stores.search import ExecutionPage, ExecutionQuery, page_of, sort_key


class MemoryStore:
    """A dict-backed :class:`~durable_core.stores.base.Store`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._executions: dict[str, Execution] = {}
        self._ops: dict[str, dict[str, Operation]] = {}
        self._callbacks: dict[str, tuple[str, str]] = {}
        self._audit: list[AuditEntry] = []

    # --- executions -----------------------------------------------------------------------

    def create_execution(self, execution: Execution) -> tuple[Execution, bool]:
        with self._lock:
            existing = self._executions.get(execution.id)
            if existing is not None:
                return existing, False
            self._executions[execution.id] = execution
            self._ops[execution.id] = {}
            return execution, True

    def get_execution(self, execution_id: str) -> Execution:
        with self._lock:
            try:
                return self._executions[execution_id]
            except KeyError:
                raise ExecutionNotFoundError(execution_id) from None

    def list_executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[Execution]:
        with self._lock:
            rows = [e for e in self._executions.values() if status is None or e.status == status]
        rows.sort(key=lambda e: e.created_at, reverse=True)
        return rows[:limit]

    def search_executions(self, query: ExecutionQuery) -> ExecutionPage:
        with self._lock:
            rows = [e for e in self._executions.values() if query.follows(e) and query.matches(e)]
        rows.sort(key=sort_key, reverse=True)
        return page_of(rows[: query.limit + 1], query.limit)

    def append_audit(self, entry: AuditEntry) -> None:
        with self._lock:
            self._audit.append(entry)

    def list_audit(self, *, cursor: str | None = None, limit: int = 50) -> AuditPage:
        start = check_audit_cursor(cursor, r"\d{1,12}")
        with self._lock:
            end = len(self._audit) if start is None else min(int(start), len(self._audit))
            items = self._audit[max(0, end - limit) : end][::-1]
        more = end - len(items) > 0
        return AuditPage(items=items, next_cursor=str(end - len(items)) if more else None)

    def load_operations(self, execution_id: str) -> list[Operation]:
        with self._lock:
            if execution_id not in self._executions:
                raise ExecutionNotFoundError(execution_id)
            return list(self._ops[execution_id].values())

    # --- leases ---------------------------------------------------------------------------

    def acquire_lease(
        self, execution_id: str, owner: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        with self._lock:
            ex = self.get_execution(execution_id)
            return self._take(ex, owner, now, ttl)

    def _take(self, ex: Execution, owner: str, now: datetime, ttl: timedelta) -> Lease | None:
        if ex.status is not ExecutionStatus.RUNNING:
            return None
        if ex.lease_owner is not None and ex.lease_expires is not None and ex.lease_expires > now:
            return None
        fence = ex.fence + 1
        expires = now + ttl
        self._executions[ex.id] = ex.evolve(
            lease_owner=owner,
            lease_expires=expires,
            fence=fence,
            updated_at=now,
            recovery_attempts=recovered(ex),
        )
        return Lease(
            execution_id=ex.id, owner=owner, fence=fence, expires=expires, signal_seq=ex.signal_seq
        )

    def claim_due(self, owner: str, now: datetime, ttl: timedelta, limit: int) -> list[Lease]:
        with self._lock:
            due = sorted(
                (
                    e
                    for e in self._executions.values()
                    if e.status is ExecutionStatus.RUNNING
                    and e.wake_at is not None
                    and e.wake_at <= now
                ),
                key=lambda e: e.wake_at or now,
            )
            leases: list[Lease] = []
            for ex in due:
                if len(leases) >= limit:
                    break
                lease = self._take(ex, owner, now, ttl)
                if lease is not None:
                    leases.append(lease)
            return leases

    def _check(self, lease: Lease) -> Execution:
        ex = self.get_execution(lease.execution_id)
        if ex.fence != lease.fence or ex.lease_owner != lease.owner:
            raise LeaseLostError(
                f"Lease on execution {lease.execution_id!r} (fence {lease.fence}) was taken over "
                f"by {ex.lease_owner!r} (fence {ex.fence}); this invocation stops writing."
            )
        return ex

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        with self._lock:
            ex = self._check(lease)
            expires = now + ttl
            self._executions[ex.id] = ex.model_copy(update={"lease_expires": expires})
            return lease.model_copy(update={"expires": expires})

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        with self._lock:
            self._check(lease)
            ops = self._ops[lease.execution_id]
            for op in operations:
                ops[op.id] = op
                if op.callback_id is not None:
                    self._callbacks[op.callback_id] = (lease.execution_id, op.id)
            if lease.expires - now > ttl / 2:
                return lease  # still comfortably held: skip the renewal write
            return self.renew_lease(lease, now, ttl)

    def finish_invocation(self, lease: Lease, end: InvocationEnd, now: datetime) -> Execution:
        with self._lock:
            ex = self._check(lease)
            wake_at = end.wake_at
            if end.status is ExecutionStatus.RUNNING and ex.signal_seq != lease.signal_seq:
                wake_at = now  # an event arrived while we ran: do not sleep through it
            updated = ex.evolve(
                status=end.status,
                result=end.result,
                error=end.error,
                wake_at=wake_at if end.status is ExecutionStatus.RUNNING else None,
                waiting_for=end.waiting_for,
                lease_owner=None,
                lease_expires=None,
                updated_at=now,
                recovery_attempts=0,
                role=ex.role or end.role,
            )
            self._executions[ex.id] = updated
            if end.status.is_terminal and ex.parent_execution_id is not None:
                self._signal(ex.parent_execution_id, now)
            return updated

    def release_lease(self, lease: Lease) -> None:
        with self._lock:
            ex = self._executions.get(lease.execution_id)
            if ex is not None and ex.fence == lease.fence and ex.lease_owner == lease.owner:
                self._executions[ex.id] = ex.evolve(lease_owner=None, lease_expires=None)

    # --- external events ------------------------------------------------------------------

    def _signal(self, execution_id: str, now: datetime) -> None:
        ex = self._executions.get(execution_id)
        if ex is not None and ex.status is ExecutionStatus.RUNNING:
            self._executions[execution_id] = ex.evolve(
                signal_seq=ex.signal_seq + 1, wake_at=now, updated_at=now
            )

    def _callback(self, callback_id: str) -> tuple[str, Operation]:
        ref = self._callbacks.get(callback_id)
        if ref is None:
            raise CallbackNotFoundError(
                "No callback has this token. Check that it was copied whole and comes from "
                "this store; tokens cannot be guessed or reconstructed."
            )
        execution_id, op_id = ref
        return execution_id, self._ops[execution_id][op_id]

    def complete_callback(
        self,
        callback_id: str,
        outcome: CallbackOutcome,
        now: datetime,
        *,
        privileged: bool = False,
    ) -> Operation:
        with self._lock:
            execution_id, op = self._callback(callback_id)
            check_callback_access(op, execution_id, privileged=privileged)
            if op.status is not OperationStatus.STARTED:
                raise CallbackAlreadyCompletedError(
                    f"Callback {op.name!r} of execution {execution_id!r} is already "
                    f"{op.status.value}; a callback completes once. Nothing was changed."
                )
            done = op.evolve(
                status=outcome.status, result=outcome.result, error=outcome.error, ended_at=now
            )
            self._ops[execution_id][op.id] = done
            self._signal(execution_id, now)
            return done

    def heartbeat_callback(self, callback_id: str, now: datetime) -> Operation:
        with self._lock:
            execution_id, op = self._callback(callback_id)
            check_callback_access(op, execution_id, privileged=False)
            if op.status is not OperationStatus.STARTED:
                raise CallbackAlreadyCompletedError(
                    f"Callback {op.name!r} of execution {execution_id!r} is already "
                    f"{op.status.value}; a heartbeat cannot revive it."
                )
            beat = op.heartbeaten(now)
            self._ops[execution_id][op.id] = beat
            self._signal(execution_id, now)
            return beat

    def request_stop(self, execution_id: str, request: StopRequest, now: datetime) -> Execution:
        with self._lock:
            ex = self.get_execution(execution_id)
            check_stop(ex)
            self._executions[execution_id] = ex.evolve(stop_requests=(*ex.stop_requests, request))
            self._signal(execution_id, now)
            return self._executions[execution_id]

    def close(self) -> None:
        """Nothing to release."""
