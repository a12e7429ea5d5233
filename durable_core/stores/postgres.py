"""PostgreSQL store: many worker processes on many machines, one database server.

Same semantics as :class:`~durable_core.stores.sqlite.SQLiteStore` (the contract is in
:mod:`durable_core.stores.base`), on psycopg 3 and its connection pool (the optional extra
``durable-saga[postgres]``). Invariants:

- **Every write is one transaction** (``READ COMMITTED``), committed before the call
  returns; a write that raises rolls back all of its statements (all or nothing).
- **Row locks order every read-modify-write**: the execution row is read ``FOR UPDATE``
  before it is changed, so a fence check, a lease take-over, a callback completion or a
  signal cannot interleave with another on the same execution, across processes and
  machines. Locks are always taken execution first, then its operations (a callback looks
  its execution up, locks it, then locks the callback's row), so two writes never wait on
  each other in a cycle; a deadlock or serialization failure the server reports anyway is
  retried (the transaction was rolled back whole, so nothing is written twice).
- **Fenced writes**: ``write_operations``, ``renew_lease`` and ``finish_invocation`` lock the
  execution row and check fence and owner in the same transaction as their writes; a
  take-over waits for that transaction, and a write after a take-over sees the new fence.
- **claim_due** selects due, free rows ``FOR UPDATE SKIP LOCKED``: workers claiming at once
  each take different executions and never wait for one another.
- **The JSON is the record** (``json`` columns holding the pydantic model's JSON); the other
  columns copy fields for indexes and searches, in the same statement. Rows are validated
  on read: one that does not parse raises CorruptRecordError naming it, and ``claim_due`` and
  the listings log and skip it. Nothing is pickled.
- **First-write order**: ``durable_operations.seq`` is set on first insert; an upsert keeps it.
- **Versioned schema**, created or migrated on open (:mod:`~durable_core.stores.postgres_schema`).

Not yet (docs/stores.md): LISTEN/NOTIFY wake-ups, group commit, retrying a commit whose
connection was lost (StoreError; the worker's retry replays from what was committed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError as PydanticValidationError

from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    CorruptRecordError,
    DurableError,
    ExecutionNotFoundError,
    LeaseLostError,
    StoreError,
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
from durable_core.stores.base import (
    InvocationEnd,
    check_callback_access,
    check_stop,
    operation_json,
    recovered,
)
from durable_core.stores.postgres_rows import (
    _execution,
    _operation,
    _operations,
    _row,
    _signalled,
    _where,
)
from durable_core.stores.postgres_schema import (
    _AUDIT_INSERT,
    _AUDIT_PAGE,
    _CALLBACK,
    _CALLBACK_OWNER,
    _DUE,
    _EXISTS,
    _GET,
    _INSERT,
    _LIST,
    _LIST_STATUS,
    _LOCK,
    _OPS,
    _SET_OP,
    _UPDATE,
    _UPSERT_OP,
    _migrate,
)
from durable_core.stores.postgres_search import search_sql
from durable_core.stores.search import ExecutionPage, ExecutionQuery, page_of
from durable_core.stores.sqlite_rows import _aware, _gc_paused, _us, _utc

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as e:  # pragma: no cover - the optional extra is missing
    raise ImportError(
        "the PostgreSQL store needs psycopg 3 and its pool: pip install 'durable-saga[postgres]'"
    ) from e

_T = TypeVar("_T")
_log = structlog.get_logger("durable.store")
_RETRIED = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
_ATTEMPTS = 5


class PostgresStore:
    """A :class:`~durable_core.stores.base.Store` in a PostgreSQL (12 or newer) database.

    Args:
        dsn: A libpq connection string or ``postgresql://`` URL. Credentials may come from
            it, from ``PGPASSWORD`` or from ``~/.pgpass``, as for any libpq client.
        pool_size: The most connections this handle opens (threads share them).
        connect_timeout_s: How long opening the store waits for the server.
        create: Create the schema in a database that has none (else StoreError).

    Raises:
        SchemaVersionError: The database holds a schema of a newer durable-saga, or tables
            of the same names that it did not write.
        StoreError: The server cannot be reached or refuses the connection.
    """

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = 8,
        connect_timeout_s: float = 10.0,
        create: bool = True,
    ) -> None:
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size must be a positive integer, not {pool_size!r}")
        self.dsn = dsn
        self.where = _where(dsn)
        timeout = max(2, round(connect_timeout_s))  # libpq's least useful value is 2 s
        try:  # one plain connection first: libpq's own reason, at once, in the error
            psycopg.connect(dsn, connect_timeout=timeout).close()
        except psycopg.Error as e:
            reason = " ".join(str(e).split())
            raise StoreError(
                f"{self.where}: cannot connect ({reason}). Check that the server is running "
                "and reachable and that the user, password (PGPASSWORD or ~/.pgpass) and "
                "database are right; the database must exist (createdb NAME)."
            ) from None
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": timeout},
            open=False,
            name=self.where,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except PoolTimeout as e:
            self._pool.close()
            raise StoreError(f"{self.where}: cannot connect within {connect_timeout_s:g} s") from e
        try:
            self._tx(lambda cur: _migrate(cur, self.where, create=create))
        except BaseException:
            self._pool.close()
            raise

    # --- plumbing -------------------------------------------------------------------------

    def _tx(self, fn: Callable[[Any], _T]) -> _T:
        """Run ``fn(cursor)`` in one transaction, committed before returning; retried on a
        deadlock or serialization failure (rolled back whole, so never applied twice)."""
        for attempt in range(_ATTEMPTS):
            try:
                with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                    return fn(cur)
            except _RETRIED:
                if attempt == _ATTEMPTS - 1:
                    raise StoreError(f"{self.where}: a write kept conflicting; retry it") from None
                time.sleep(0.005 * 2**attempt)
            except DurableError:
                raise
            except PoolTimeout as e:
                raise StoreError(f"{self.where}: no connection free or reachable ({e})") from e
            except psycopg.Error as e:
                raise StoreError(f"{self.where}: {e}") from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _find(self, cur: Any, execution_id: str, *, lock: bool) -> Execution | None:
        row = cur.execute(_LOCK if lock else _GET, (execution_id,)).fetchone()
        return None if row is None else _execution(self.where, execution_id, row[0])

    def _get(self, cur: Any, execution_id: str, *, lock: bool = True) -> Execution:
        ex = self._find(cur, execution_id, lock=lock)
        if ex is None:
            raise ExecutionNotFoundError(execution_id)
        return ex

    def _put(self, cur: Any, ex: Execution) -> Execution:
        ex = _utc(ex)
        cur.execute(_UPDATE, _row(ex))
        return ex

    # --- executions -----------------------------------------------------------------------

    def create_execution(self, execution: Execution) -> tuple[Execution, bool]:
        """Insert ``execution`` unless its id exists; the stored record and whether it is new."""
        ex = _utc(execution)

        def tx(cur: Any) -> tuple[Execution, bool]:
            if cur.execute(_INSERT, _row(ex)).rowcount == 1:
                return ex, True
            return self._get(cur, ex.id, lock=False), False

        return self._tx(tx)

    def get_execution(self, execution_id: str) -> Execution:
        """Return an execution; ExecutionNotFoundError if unknown."""
        return self._tx(lambda cur: self._get(cur, execution_id, lock=False))

    def _listed(self, rows: list[tuple[str, str]], what: str) -> list[Execution]:
        found: list[Execution] = []
        for eid, record in rows:
            try:
                found.append(_execution(self.where, eid, record))
            except CorruptRecordError as e:
                _log.error(f"{what} skips an unreadable execution", error=str(e))
        return found

    def list_executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[Execution]:
        """Newest first (by ``created_at``), optionally only those with ``status``; a row
        that does not parse is skipped and logged."""

        def tx(cur: Any) -> list[tuple[str, str]]:
            if status is None:
                return list(cur.execute(_LIST, (limit,)).fetchall())
            return list(cur.execute(_LIST_STATUS, (status.value, limit)).fetchall())

        return self._listed(self._tx(tx), "list_executions")

    def search_executions(self, query: ExecutionQuery) -> ExecutionPage:
        """One page of the executions ``query`` matches, newest first (one SQL query; see
        :mod:`~durable_core.stores.postgres_search`)."""
        sql, params = search_sql(query)
        rows = self._tx(lambda cur: list(cur.execute(sql, params).fetchall()))
        return page_of(self._listed(rows, "search_executions"), query.limit)

    def append_audit(self, entry: AuditEntry) -> None:
        """Append ``entry`` to the ``durable_audit`` table, durably."""
        self._tx(lambda cur: cur.execute(_AUDIT_INSERT, (entry.model_dump_json(),)))

    def list_audit(self, *, cursor: str | None = None, limit: int = 50) -> AuditPage:
        """The audit log, newest first (by ``seq``); the cursor is the last ``seq`` returned."""
        start = check_audit_cursor(cursor, r"\d{1,18}")
        params = (int(start or 2**62), limit + 1)
        rows = self._tx(lambda cur: list(cur.execute(_AUDIT_PAGE, params).fetchall()))
        try:
            items = [AuditEntry.model_validate_json(record) for _, record in rows[:limit]]
        except PydanticValidationError as e:
            raise CorruptRecordError(f"an audit record in {self.where} does not parse: {e}") from e
        more = len(rows) > limit
        return AuditPage(items=items, next_cursor=str(rows[limit - 1][0]) if more else None)

    def load_operations(self, execution_id: str) -> list[Operation]:
        """All journal records of an execution, in first-write order."""

        def tx(cur: Any) -> list[Operation]:
            rows = cur.execute(_OPS, (execution_id,)).fetchall()
            if not rows and cur.execute(_EXISTS, (execution_id,)).fetchone() is None:
                raise ExecutionNotFoundError(execution_id)
            with _gc_paused():
                return _operations(self.where, execution_id, rows)

        return self._tx(tx)

    # --- leases ---------------------------------------------------------------------------

    def _take(
        self, cur: Any, ex: Execution, owner: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        if ex.status is not ExecutionStatus.RUNNING:
            return None
        if ex.lease_owner is not None and ex.lease_expires is not None and ex.lease_expires > now:
            return None
        fence, expires = ex.fence + 1, now + ttl
        changes = {"lease_owner": owner, "lease_expires": expires, "fence": fence}
        self._put(cur, ex.evolve(**changes, updated_at=now, recovery_attempts=recovered(ex)))
        return Lease(
            execution_id=ex.id, owner=owner, fence=fence, expires=expires, signal_seq=ex.signal_seq
        )

    def acquire_lease(
        self, execution_id: str, owner: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        """Take the lease of a RUNNING execution whose lease is free or expired, else None."""
        now = _aware(now)
        return self._tx(lambda cur: self._take(cur, self._get(cur, execution_id), owner, now, ttl))

    def claim_due(self, owner: str, now: datetime, ttl: timedelta, limit: int) -> list[Lease]:
        """Lease up to ``limit`` due, free, RUNNING executions, earliest ``wake_at`` first.

        Rows are locked ``FOR UPDATE SKIP LOCKED``: each execution goes to exactly one owner,
        and claimers never wait on each other. A row that does not parse is skipped (logged).
        """
        now = _aware(now)
        page: dict[str, Any] = {"now": _us(now), "wake": -(2**63), "id": ""}

        def tx(cur: Any) -> list[Lease]:
            leases: list[Lease] = []
            while len(leases) < limit:
                rows = cur.execute(_DUE, {**page, "limit": limit - len(leases)}).fetchall()
                if not rows:
                    break
                for eid, wake, record in rows:
                    page.update(wake=wake, id=eid)
                    try:
                        ex = _execution(self.where, eid, record)
                    except CorruptRecordError as e:
                        _log.error("claim_due skips an unreadable execution", error=str(e))
                        continue
                    lease = self._take(cur, ex, owner, now, ttl)
                    leases += [lease] if lease is not None else []
            return leases

        return self._tx(tx)

    def _check(self, cur: Any, lease: Lease) -> Execution:
        ex = self._get(cur, lease.execution_id)  # locked until the transaction ends
        if ex.fence != lease.fence or ex.lease_owner != lease.owner:
            raise LeaseLostError(
                f"Lease on execution {lease.execution_id!r} (fence {lease.fence}) was taken over "
                f"by {ex.lease_owner!r} (fence {ex.fence}); this invocation stops writing."
            )
        return ex

    def _renew(self, cur: Any, ex: Execution, lease: Lease, expires: datetime) -> Lease:
        self._put(cur, ex.model_copy(update={"lease_expires": expires}))
        return lease.model_copy(update={"expires": expires})

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        """Extend a lease still held; LeaseLostError (nothing changed) otherwise."""
        now = _aware(now)
        return self._tx(lambda cur: self._renew(cur, self._check(cur, lease), lease, now + ttl))

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        """Upsert journal records under ``lease`` in one transaction; renew it once half of
        it is spent. Nothing is written if the lease is stale (LeaseLostError) or a callback
        token already belongs to another operation (StoreError)."""
        now = _aware(now)
        eid = lease.execution_id
        rows = [(eid, op.id, op.callback_id, operation_json(op)) for op in map(_utc, operations)]

        def tx(cur: Any) -> Lease:
            ex = self._check(cur, lease)
            if rows:
                cur.executemany(_UPSERT_OP, rows)
            if lease.expires - now <= ttl / 2:
                return self._renew(cur, ex, lease, now + ttl)
            return lease

        return self._tx(tx)

    def finish_invocation(self, lease: Lease, end: InvocationEnd, now: datetime) -> Execution:
        """Record how the invocation ended and release the lease, in one transaction; a
        terminal status wakes the parent execution."""
        now = _aware(now)

        def tx(cur: Any) -> Execution:
            ex = self._check(cur, lease)
            running = end.status is ExecutionStatus.RUNNING
            wake_at = end.wake_at if running else None
            if running and ex.signal_seq != lease.signal_seq:
                wake_at = now  # an event arrived while we ran: do not sleep through it
            changes = end.model_dump(include={"status", "result", "error", "waiting_for"})
            changes |= {"wake_at": wake_at, "updated_at": now, "lease_owner": None}
            changes |= {"recovery_attempts": 0, "role": ex.role or end.role}
            done = self._put(cur, ex.evolve(**changes, lease_expires=None))
            if end.status.is_terminal and ex.parent_execution_id is not None:
                self._signal(cur, ex.parent_execution_id, now)
            return done

        return self._tx(tx)

    def release_lease(self, lease: Lease) -> None:
        """Give the lease up, changing nothing else; a no-op if it was already lost."""

        def tx(cur: Any) -> None:
            ex = self._find(cur, lease.execution_id, lock=True)
            if ex is not None and ex.fence == lease.fence and ex.lease_owner == lease.owner:
                self._put(cur, ex.evolve(lease_owner=None, lease_expires=None))

        self._tx(tx)

    # --- external events ------------------------------------------------------------------

    def _signal(self, cur: Any, execution_id: str, now: datetime) -> None:
        ex = self._find(cur, execution_id, lock=True)
        if ex is not None and ex.status is ExecutionStatus.RUNNING:
            self._put(cur, _signalled(ex, now))

    def _change_callback(
        self,
        callback_id: str,
        now: datetime,
        change: Callable[[Operation, datetime], Operation],
        *,
        privileged: bool = False,
    ) -> Operation:
        """Apply ``change`` to a STARTED callback and signal its execution, atomically."""
        now = _aware(now)
        missing = CallbackNotFoundError(
            "No callback has this token. Check that it was copied whole and comes from "
            "this store; tokens cannot be guessed or reconstructed."
        )

        def tx(cur: Any) -> Operation:
            owner = cur.execute(_CALLBACK_OWNER, (callback_id,)).fetchone()
            if owner is None:
                raise missing
            ex = self._find(cur, owner[0], lock=True)  # execution first, then its operation
            row = cur.execute(_CALLBACK, (callback_id,)).fetchone()
            if row is None:
                raise missing
            seq, execution_id, op_id, record = row
            op = _operation(self.where, execution_id, op_id, seq, record)
            check_callback_access(op, execution_id, privileged=privileged)
            if op.status is not OperationStatus.STARTED:
                raise CallbackAlreadyCompletedError(
                    f"Callback {op.name!r} of execution {execution_id!r} is already "
                    f"{op.status.value}; a callback completes once. Nothing was changed."
                )
            op = _utc(change(op, now))
            cur.execute(_SET_OP, (operation_json(op), seq))
            if ex is not None and ex.status is ExecutionStatus.RUNNING:
                self._put(cur, _signalled(ex, now))
            return op

        return self._tx(tx)

    def complete_callback(
        self,
        callback_id: str,
        outcome: CallbackOutcome,
        now: datetime,
        *,
        privileged: bool = False,
    ) -> Operation:
        """Complete a STARTED callback once and wake its execution, atomically.

        Raises CallbackNotFoundError for an unknown token, PrivilegedCallbackError for a
        privileged callback without ``privileged=True``, and CallbackAlreadyCompletedError
        if the callback is no longer STARTED (each changing nothing).
        """
        changes = outcome.model_dump()
        return self._change_callback(
            callback_id,
            now,
            lambda op, t: op.evolve(**changes, ended_at=t),
            privileged=privileged,
        )

    def heartbeat_callback(self, callback_id: str, now: datetime) -> Operation:
        """Push a STARTED callback's heartbeat deadline forward and wake its execution."""

        return self._change_callback(callback_id, now, lambda op, t: op.heartbeaten(t))

    def request_stop(self, execution_id: str, request: StopRequest, now: datetime) -> Execution:
        """Append a cancel or terminate request to a RUNNING execution; make it due now."""
        now = _aware(now)

        def tx(cur: Any) -> Execution:
            ex = self._get(cur, execution_id)
            check_stop(ex)
            stopped = ex.evolve(stop_requests=(*ex.stop_requests, request))
            return self._put(cur, _signalled(stopped, now))

        return self._tx(tx)

    def close(self) -> None:
        """Close the pool's connections; the store cannot be used afterwards."""
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
