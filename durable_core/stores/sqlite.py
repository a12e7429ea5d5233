"""SQLite store: the embedded default — one file, no server, several worker processes.

Same semantics as :class:`~durable_core.stores.memory.MemoryStore` (the contract is in
:mod:`durable_core.stores.base`), plus these invariants:

- **WAL, durable commits.** ``durability="full"`` (default) is ``synchronous=FULL``: a commit
  is fsync'd before the call returns. ``"normal"`` may lose the last commits on power loss
  or an OS crash (never on a process crash); the file never corrupts.
- **Every write in a ``BEGIN IMMEDIATE`` transaction**: the write lock is taken before
  anything is read, so every read-modify-write (fence check, claim, callback completion,
  signal) is atomic across threads and processes. Threads share a store (a lock guards its
  connection); each process opens its own. Writes of threads that arrive together share
  one transaction and one commit, each in its own savepoint (group commit,
  :mod:`~durable_core.stores.sqlite_commit`); a write that fails undoes only its own.
- **The JSON is the record**; other columns copy fields for indexes, in the same statement.
  Rows are validated on read (:mod:`~durable_core.stores.sqlite_rows`): one that does not
  parse raises CorruptRecordError naming it. ``claim_due`` and ``list_executions`` log and
  skip it, so it cannot stall every worker or hide every other execution. Nothing is
  pickled.
- **Fenced writes**: a write under a lease checks fence and owner in its own transaction.
- **First-write order**: ``operations.seq`` is set on first insert; an upsert keeps it.
- **UTC**: datetimes come back aware in UTC (naive input is taken as UTC); the indexed
  copies are integer epoch microseconds (:mod:`~durable_core.stores.sqlite_rows`).
- **The file** is created owner-only (0600, folders 0700), kept in WAL mode, and its
  schema version and layout are checked on open (:mod:`~durable_core.stores.sqlite_schema`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import structlog
from pydantic import ValidationError as PydanticValidationError

from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    CorruptRecordError,
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
from durable_core.stores.search import ExecutionPage, ExecutionQuery, page_of
from durable_core.stores.sqlite_commit import GroupCommit
from durable_core.stores.sqlite_rows import (
    _aware,
    _execution,
    _gc_paused,
    _operation,
    _operations,
    _row,
    _text,
    _us,
    _utc,
)
from durable_core.stores.sqlite_schema import (
    _AUDIT_INSERT,
    _AUDIT_PAGE,
    _DUE,
    _EXISTS,
    _FENCED_UPSERT_OP,
    _INSERT,
    _LIST,
    _LIST_STATUS,
    _OPS,
    _UPDATE,
    _UPSERT_OP,
    SCHEMA_VERSION,  # noqa: F401 - a public name of this module before the schema moved
    _check_schema,
    _open_file,
    _open_read_only,
)
from durable_core.stores.sqlite_search import search_sql

_T = TypeVar("_T")
_log = structlog.get_logger("durable.store")


def _signalled(ex: Execution, now: datetime) -> Execution:
    """``ex`` after an external event: ``signal_seq`` bumped and due now."""
    return ex.evolve(signal_seq=ex.signal_seq + 1, wake_at=now, updated_at=now)


class SQLiteStore:
    """A :class:`~durable_core.stores.base.Store` in one SQLite file.

    Args:
        path: The database file; missing parent directories are created. A new file is
            created owner-only (0600, its folders 0700); an existing one keeps its mode.
        durability: ``"full"`` fsyncs every commit before returning; ``"normal"`` may lose
            the last commits on power loss (never corrupts the file).
        busy_timeout_s: How long a call waits for another process's write lock before it
            fails with :class:`~durable_core.errors.StoreError`.
        read_only: Open an existing file for reading only: no write lock is taken (reads
            go on behind a long writer) and it works on a read-only mount; every write
            raises StoreError. What ``durable list`` and ``show`` use.

    Raises:
        SchemaVersionError: The file was written by a newer durable-saga, or has a layout
            this version does not know.
        StoreError: The file cannot be opened as a SQLite database in WAL mode.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Literal["full", "normal"] = "full",
        busy_timeout_s: float = 30.0,
        read_only: bool = False,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.path = Path(path)
        self.read_only = read_only
        if read_only:
            self._db = _open_read_only(self.path, busy_timeout_s=busy_timeout_s)
        else:
            self._db = _open_file(self.path, durability=durability, busy_timeout_s=busy_timeout_s)
        self._lock = threading.Lock()
        self._commits = GroupCommit(self._db, self._lock, f"SQLite store {self.path}")
        try:
            if read_only:
                _check_schema(self._db, self.path, read_only=True)
            else:
                self._write(lambda db: _check_schema(db, self.path))
        except BaseException:
            self._db.close()
            raise

    # --- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:  # no transaction is open between writes: reads see committed rows
            try:
                yield self._db
            except sqlite3.Error as e:
                raise StoreError(f"SQLite store {self.path}: {e}") from e

    def _write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn(db)`` durably, all or nothing; concurrent writes share one commit
        (see :mod:`durable_core.stores.sqlite_commit`)."""
        if self.read_only:
            raise StoreError(f"SQLite store {self.path} is open read-only: it cannot be written")
        return self._commits.run(fn)

    def _find(self, db: sqlite3.Connection, execution_id: str) -> Execution | None:
        row = db.execute(
            "SELECT CAST(record AS BLOB) FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        return None if row is None else _execution(self.path, execution_id, row[0])

    def _get(self, db: sqlite3.Connection, execution_id: str) -> Execution:
        ex = self._find(db, execution_id)
        if ex is None:
            raise ExecutionNotFoundError(execution_id)
        return ex

    @staticmethod
    def _put(db: sqlite3.Connection, ex: Execution) -> Execution:
        ex = _utc(ex)
        db.execute(_UPDATE, _row(ex))
        return ex

    # --- executions -----------------------------------------------------------------------

    def create_execution(self, execution: Execution) -> tuple[Execution, bool]:
        """Insert ``execution`` unless its id exists; return the stored one and if it is new."""
        ex = _utc(execution)

        def tx(db: sqlite3.Connection) -> tuple[Execution, bool]:
            if db.execute(_INSERT, _row(ex)).rowcount == 1:
                return ex, True
            return self._get(db, ex.id), False

        return self._write(tx)

    def get_execution(self, execution_id: str) -> Execution:
        """Return an execution; ExecutionNotFoundError if unknown."""
        with self._read() as db:
            return self._get(db, execution_id)

    def list_executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[Execution]:
        """Newest first (by ``created_at``), optionally only those with ``status``.

        A row that does not parse is skipped (and logged, naming it), so one damaged row
        does not hide the others; the listing then has one row fewer.
        """
        with self._read() as db:
            if status is None:
                rows = db.execute(_LIST, (limit,)).fetchall()
            else:
                rows = db.execute(_LIST_STATUS, (status.value, limit)).fetchall()
        found: list[Execution] = []
        for raw_id, record in rows:
            eid = _text(raw_id)
            try:
                found.append(_execution(self.path, eid, record))
            except CorruptRecordError as e:
                _log.error("list_executions skips an unreadable execution", error=str(e))
        return found

    def search_executions(self, query: ExecutionQuery) -> ExecutionPage:
        """One page of the executions ``query`` matches, newest first (one SQL query on the
        listing indexes; see :mod:`~durable_core.stores.sqlite_search`). A row that does
        not parse is skipped and logged, as in :meth:`list_executions`."""
        sql, params = search_sql(query)
        with self._read() as db:
            rows = db.execute(sql, params).fetchall()
        found: list[Execution] = []
        for raw_id, record in rows:
            try:
                found.append(_execution(self.path, _text(raw_id), record))
            except CorruptRecordError as e:
                _log.error("search_executions skips an unreadable execution", error=str(e))
        return page_of(found, query.limit)

    def append_audit(self, entry: AuditEntry) -> None:
        """Append ``entry`` to the ``audit`` table, durably."""
        self._write(lambda db: db.execute(_AUDIT_INSERT, (entry.model_dump_json(),)))

    def list_audit(self, *, cursor: str | None = None, limit: int = 50) -> AuditPage:
        """The audit log, newest first (by ``seq``); the cursor is the last ``seq`` returned."""
        start = check_audit_cursor(cursor, r"\d{1,18}")
        with self._read() as db:
            rows = db.execute(_AUDIT_PAGE, (int(start or 2**62), limit + 1)).fetchall()
        try:
            items = [AuditEntry.model_validate_json(record) for _, record in rows[:limit]]
        except PydanticValidationError as e:
            raise CorruptRecordError(f"an audit record in {self.path} does not parse: {e}") from e
        more = len(rows) > limit
        return AuditPage(items=items, next_cursor=str(rows[limit - 1][0]) if more else None)

    def load_operations(self, execution_id: str) -> list[Operation]:
        """All journal records of an execution, in first-write order."""
        with _gc_paused():
            with self._read() as db:
                rows = db.execute(_OPS, (execution_id,)).fetchall()
                exists = rows or db.execute(_EXISTS, (execution_id,)).fetchone()
            if not exists:
                raise ExecutionNotFoundError(execution_id)
            return _operations(self.path, execution_id, rows)

    # --- leases ---------------------------------------------------------------------------

    def _take(
        self, db: sqlite3.Connection, ex: Execution, owner: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        if ex.status is not ExecutionStatus.RUNNING:
            return None
        if ex.lease_owner is not None and ex.lease_expires is not None and ex.lease_expires > now:
            return None
        fence, expires = ex.fence + 1, now + ttl
        changes = {"lease_owner": owner, "lease_expires": expires, "fence": fence}
        self._put(db, ex.evolve(**changes, updated_at=now, recovery_attempts=recovered(ex)))
        return Lease(
            execution_id=ex.id, owner=owner, fence=fence, expires=expires, signal_seq=ex.signal_seq
        )

    def acquire_lease(
        self, execution_id: str, owner: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        """Take the lease of a RUNNING execution whose lease is free or expired, else None."""
        now = _aware(now)

        def tx(db: sqlite3.Connection) -> Lease | None:
            return self._take(db, self._get(db, execution_id), owner, now, ttl)

        return self._write(tx)

    def claim_due(self, owner: str, now: datetime, ttl: timedelta, limit: int) -> list[Lease]:
        """Lease up to ``limit`` due, free, RUNNING executions, earliest ``wake_at`` first.

        One transaction, so with several processes each execution goes to exactly one
        owner. A row that does not parse is skipped (and logged); the others are claimed.
        """
        now = _aware(now)
        page: dict[str, Any] = {"now": _us(now), "wake": -(2**63), "rowid": 0}

        def tx(db: sqlite3.Connection) -> list[Lease]:
            leases: list[Lease] = []
            while len(leases) < limit:
                rows = db.execute(_DUE, {**page, "limit": limit - len(leases)}).fetchall()
                if not rows:
                    break
                for rowid, raw_id, wake, record in rows:
                    page.update(wake=wake, rowid=rowid)
                    eid = _text(raw_id)
                    try:
                        ex = _execution(self.path, eid, record)
                    except CorruptRecordError as e:
                        _log.error("claim_due skips an unreadable execution", error=str(e))
                        continue
                    lease = self._take(db, ex, owner, now, ttl)
                    leases += [lease] if lease is not None else []
            return leases

        return self._write(tx)

    def _check(self, db: sqlite3.Connection, lease: Lease) -> Execution:
        ex = self._get(db, lease.execution_id)
        if ex.fence != lease.fence or ex.lease_owner != lease.owner:
            raise LeaseLostError(
                f"Lease on execution {lease.execution_id!r} (fence {lease.fence}) was taken over "
                f"by {ex.lease_owner!r} (fence {ex.fence}); this invocation stops writing."
            )
        return ex

    def _renew(
        self, db: sqlite3.Connection, ex: Execution, lease: Lease, expires: datetime
    ) -> Lease:
        self._put(db, ex.model_copy(update={"lease_expires": expires}))
        return lease.model_copy(update={"expires": expires})

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        """Extend a lease still held; LeaseLostError (nothing changed) otherwise."""
        now = _aware(now)

        def tx(db: sqlite3.Connection) -> Lease:
            return self._renew(db, self._check(db, lease), lease, now + ttl)

        return self._write(tx)

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        """Upsert journal records under ``lease`` in one durable transaction; renew it.

        Nothing is written if the lease is stale (LeaseLostError) or a callback token
        already belongs to another operation (StoreError).
        """
        now = _aware(now)
        eid, fence = lease.execution_id, lease.fence
        rows = [(eid, op.id, op.callback_id, operation_json(op)) for op in map(_utc, operations)]

        def tx(db: sqlite3.Connection) -> Lease:
            if lease.expires - now <= ttl / 2:  # renew: check the lease on the parsed record
                ex = self._check(db, lease)
                db.executemany(_UPSERT_OP, rows)
                return self._renew(db, ex, lease, now + ttl)
            for row in rows:
                if not self._upsert_fenced(db, lease, row):
                    self._check(db, lease)  # raises, naming who holds the lease
                    raise LeaseLostError(f"lease on execution {eid!r} (fence {fence}) lost")
            return lease

        return self._write(tx)

    def _upsert_fenced(self, db: sqlite3.Connection, lease: Lease, row: tuple[Any, ...]) -> bool:
        """Upsert a journal row if ``lease`` is still held, in one statement; else False."""
        fenced = (*row, lease.execution_id, lease.fence, lease.owner)
        return bool(db.execute(_FENCED_UPSERT_OP, fenced).rowcount == 1)

    def finish_invocation(self, lease: Lease, end: InvocationEnd, now: datetime) -> Execution:
        """Record how the invocation ended and release the lease, in one transaction.

        The execution stays due now if an event arrived during the invocation; a terminal
        status wakes the parent execution.
        """
        now = _aware(now)

        def tx(db: sqlite3.Connection) -> Execution:
            ex = self._check(db, lease)
            running = end.status is ExecutionStatus.RUNNING
            wake_at = end.wake_at if running else None
            if running and ex.signal_seq != lease.signal_seq:
                wake_at = now  # an event arrived while we ran: do not sleep through it
            changes = end.model_dump(include={"status", "result", "error", "waiting_for"})
            changes |= {"wake_at": wake_at, "updated_at": now, "lease_owner": None}
            changes |= {"recovery_attempts": 0, "role": ex.role or end.role}
            done = self._put(db, ex.evolve(**changes, lease_expires=None))
            if end.status.is_terminal and ex.parent_execution_id is not None:
                self._signal(db, ex.parent_execution_id, now)
            return done

        return self._write(tx)

    def release_lease(self, lease: Lease) -> None:
        """Give the lease up, changing nothing else; a no-op if it was already lost."""

        def tx(db: sqlite3.Connection) -> None:
            ex = self._find(db, lease.execution_id)
            if ex is not None and ex.fence == lease.fence and ex.lease_owner == lease.owner:
                self._put(db, ex.evolve(lease_owner=None, lease_expires=None))

        self._write(tx)

    # --- external events ------------------------------------------------------------------

    def _signal(self, db: sqlite3.Connection, execution_id: str, now: datetime) -> None:
        ex = self._find(db, execution_id)
        if ex is not None and ex.status is ExecutionStatus.RUNNING:
            self._put(db, _signalled(ex, now))

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

        def tx(db: sqlite3.Connection) -> Operation:
            row = db.execute(
                "SELECT seq, CAST(execution_id AS BLOB), CAST(op_id AS BLOB), CAST(record AS BLOB) "
                "FROM operations WHERE callback_id = ?",
                (callback_id,),
            ).fetchone()
            if row is None:
                raise CallbackNotFoundError(
                    "No callback has this token. Check that it was copied whole and comes from "
                    "this store; tokens cannot be guessed or reconstructed."
                )
            seq, raw_eid, op_id, record = row
            execution_id = _text(raw_eid)
            op = _operation(self.path, execution_id, op_id, seq, record)
            if execution_id.encode() != raw_eid:  # else it would signal no execution at all
                raise CorruptRecordError(
                    f"Operation {op.id!r} (row seq={seq}) in {self.path} belongs to execution "
                    f"{execution_id!r}, an id that is not UTF-8 text. Restore the file from a "
                    f"backup, or inspect the row (operations, seq={seq}) with the sqlite3 shell."
                )
            check_callback_access(op, execution_id, privileged=privileged)
            if op.status is not OperationStatus.STARTED:
                raise CallbackAlreadyCompletedError(
                    f"Callback {op.name!r} of execution {execution_id!r} is already "
                    f"{op.status.value}; a callback completes once. Nothing was changed."
                )
            op = _utc(change(op, now))
            db.execute("UPDATE operations SET record = ? WHERE seq = ?", (operation_json(op), seq))
            self._signal(db, execution_id, now)
            return op

        return self._write(tx)

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

        def tx(db: sqlite3.Connection) -> Execution:
            ex = self._get(db, execution_id)
            check_stop(ex)
            stopped = ex.evolve(stop_requests=(*ex.stop_requests, request))
            return self._put(db, _signalled(stopped, now))

        return self._write(tx)

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
