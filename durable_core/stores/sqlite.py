"""The embedded default store: one SQLite file, safe for several worker processes.

Invariants (on top of those of :mod:`durable_core.stores.base`):
- WAL journal mode; ``durability="full"`` sets ``synchronous=FULL`` so a commit is on disk
  before ``write_operations`` returns. ``"normal"`` may lose the last commits on power loss
  or an OS crash (never on a process crash) and never corrupts the file.
- Every read-modify-write runs inside ``BEGIN IMMEDIATE`` (the write lock is taken first),
  so checks such as "this lease still holds" and the writes they guard are atomic across
  processes. Any error rolls the transaction back: nothing is half-written.
- Records are stored as the JSON of the pydantic models and validated when read back; a
  row that does not parse raises :class:`CorruptRecordError` naming it. Nothing is pickled.
- The schema version lives in ``meta``; a newer file is refused, not misread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import ValidationError as PydanticValidationError

from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    CorruptRecordError,
    ExecutionNotFoundError,
    ExecutionNotRunningError,
    LeaseLostError,
    SchemaVersionError,
    StoreError,
)
from durable_core.journal import (
    CallbackOutcome,
    Execution,
    ExecutionStatus,
    Lease,
    Operation,
    OperationStatus,
)
from durable_core.stores.base import InvocationEnd

SCHEMA_VERSION = 1
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    wake_us INTEGER,
    lease_us INTEGER,
    created_us INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_due ON executions (status, wake_us);
CREATE INDEX IF NOT EXISTS executions_created ON executions (created_us);
CREATE TABLE IF NOT EXISTS operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    op_id TEXT NOT NULL,
    callback_id TEXT,
    data TEXT NOT NULL,
    UNIQUE (execution_id, op_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS operations_callback ON operations (callback_id)
    WHERE callback_id IS NOT NULL;
"""


def _us(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1_000_000)


class SQLiteStore:
    """A :class:`~durable_core.stores.base.Store` in one SQLite file.

    Args:
        path: the database file; parent directories are created.
        durability: ``"full"`` (fsync per commit, the default) or ``"normal"``.
        busy_timeout_s: how long to wait for another process's write lock.
    """

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        durability: Literal["full", "normal"] = "full",
        busy_timeout_s: float = 30.0,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', got {durability!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._con = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
        )
        self._con.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute(f"PRAGMA synchronous={durability.upper()}")
        self._migrate()

    # --- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding SQLite's write lock from the start."""
        with self._lock:
            con = self._con
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as con:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif not row[0].isdigit() or int(row[0]) != SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{self.path} has store schema version {row[0]!r}; this durable-saga "
                    f"reads version {SCHEMA_VERSION}. It was written by a newer (or unknown) "
                    "durable-saga: upgrade the library, or point --store at another file."
                )

    def _parse(self, model: Callable[[str], T], data: str, where: str) -> T:
        try:
            return model(data)
        except (PydanticValidationError, ValueError) as e:
            raise CorruptRecordError(
                f"{where} in {self.path} does not parse ({e.__class__.__name__}: "
                f"{str(e).splitlines()[0]}). Inspect it with the sqlite3 shell or restore "
                "the file from a backup; other executions are unaffected."
            ) from e

    def _get(self, con: sqlite3.Connection, execution_id: str) -> Execution:
        row = con.execute("SELECT data FROM executions WHERE id=?", (execution_id,)).fetchone()
        if row is None:
            raise ExecutionNotFoundError(execution_id)
        return self._parse(Execution.model_validate_json, row[0], f"execution row {execution_id!r}")

    def _put(self, con: sqlite3.Connection, ex: Execution) -> None:
        con.execute(
            "UPDATE executions SET status=?, wake_us=?, lease_us=?, data=? WHERE id=?",
            (
                ex.status.value,
                _us(ex.wake_at),
                _us(ex.lease_expires if ex.lease_owner is not None else None),
                ex.model_dump_json(),
                ex.id,
            ),
        )

    def _check(self, con: sqlite3.Connection, lease: Lease) -> Execution:
        ex = self._get(con, lease.execution_id)
        if ex.fence != lease.fence or ex.lease_owner != lease.owner:
            raise LeaseLostError(
                f"Lease on execution {lease.execution_id!r} (fence {lease.fence}) was taken over "
                f"by {ex.lease_owner!r} (fence {ex.fence}); this invocation stops writing."
            )
        return ex

    # --- executions -----------------------------------------------------------------------

    def create_execution(self, execution: Execution) -> tuple[Execution, bool]:
        with self._tx() as con:
            cur = con.execute(
                "INSERT OR IGNORE INTO executions (id, status, wake_us, created_us, data) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    execution.id,
                    execution.status.value,
                    _us(execution.wake_at),
                    _us(execution.created_at),
                    execution.model_dump_json(),
                ),
            )
            if cur.rowcount == 1:
                return execution, True
            return self._get(con, execution.id), False

    def get_execution(self, execution_id: str) -> Execution:
        with self._lock:
            return self._get(self._con, execution_id)

    def list_executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[Execution]:
        query = "SELECT id, data FROM executions"
        params: tuple[object, ...] = ()
        if status is not None:
            query += " WHERE status=?"
            params = (status.value,)
        query += " ORDER BY created_us DESC, id DESC LIMIT ?"
        with self._lock:
            rows = self._con.execute(query, (*params, limit)).fetchall()
        return [
            self._parse(Execution.model_validate_json, data, f"execution row {eid!r}")
            for eid, data in rows
        ]

    def load_operations(self, execution_id: str) -> list[Operation]:
        with self._lock:
            rows = self._con.execute(
                "SELECT op_id, data FROM operations WHERE execution_id=? ORDER BY seq",
                (execution_id,),
            ).fetchall()
            if not rows:
                self._get(self._con, execution_id)  # ExecutionNotFoundError if unknown
        return [
            self._parse(
                Operation.model_validate_json,
                data,
                f"operation row {op_id!r} of execution {execution_id!r}",
            )
            for op_id, data in rows
        ]

    # --- leases ---------------------------------------------------------------------------

    def _take(
        self, con: sqlite3.Connection, ex: Execution, owner: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        if ex.status is not ExecutionStatus.RUNNING:
            return None
        if ex.lease_owner is not None and ex.lease_expires is not None and ex.lease_expires > now:
            return None
        fence = ex.fence + 1
        expires = now + ttl
        self._put(
            con, ex.evolve(lease_owner=owner, lease_expires=expires, fence=fence, updated_at=now)
        )
        return Lease(
            execution_id=ex.id, owner=owner, fence=fence, expires=expires, signal_seq=ex.signal_seq
        )

    def acquire_lease(
        self, execution_id: str, owner: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        with self._tx() as con:
            return self._take(con, self._get(con, execution_id), owner, now, ttl)

    def claim_due(self, owner: str, now: datetime, ttl: timedelta, limit: int) -> list[Lease]:
        with self._tx() as con:
            rows = con.execute(
                "SELECT id, data FROM executions WHERE status='RUNNING' AND wake_us <= ? "
                "AND (lease_us IS NULL OR lease_us <= ?) ORDER BY wake_us LIMIT ?",
                (_us(now), _us(now), limit),
            ).fetchall()
            leases: list[Lease] = []
            for eid, data in rows:
                if len(leases) >= limit:
                    break
                ex = self._parse(Execution.model_validate_json, data, f"execution row {eid!r}")
                lease = self._take(con, ex, owner, now, ttl)
                if lease is not None:
                    leases.append(lease)
            return leases

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        with self._tx() as con:
            return self._renew(con, self._check(con, lease), lease, now, ttl)

    def _renew(
        self, con: sqlite3.Connection, ex: Execution, lease: Lease, now: datetime, ttl: timedelta
    ) -> Lease:
        expires = now + ttl
        self._put(con, ex.model_copy(update={"lease_expires": expires}))
        return lease.model_copy(update={"expires": expires})

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        with self._tx() as con:
            ex = self._check(con, lease)
            con.executemany(
                "INSERT INTO operations (execution_id, op_id, callback_id, data) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (execution_id, op_id) DO UPDATE SET "
                "callback_id=excluded.callback_id, data=excluded.data",
                [
                    (lease.execution_id, op.id, op.callback_id, op.model_dump_json())
                    for op in operations
                ],
            )
            if lease.expires - now > ttl / 2:
                return lease  # still comfortably held: no need to touch the execution row
            return self._renew(con, ex, lease, now, ttl)

    def finish_invocation(self, lease: Lease, end: InvocationEnd, now: datetime) -> Execution:
        with self._tx() as con:
            ex = self._check(con, lease)
            running = end.status is ExecutionStatus.RUNNING
            wake_at = end.wake_at
            if running and ex.signal_seq != lease.signal_seq:
                wake_at = now  # an event arrived while we ran: do not sleep through it
            updated = ex.evolve(
                status=end.status,
                result=end.result,
                error=end.error,
                wake_at=wake_at if running else None,
                waiting_for=end.waiting_for,
                lease_owner=None,
                lease_expires=None,
                updated_at=now,
            )
            self._put(con, updated)
            if end.status.is_terminal and ex.parent_execution_id is not None:
                self._signal(con, ex.parent_execution_id, now)
            return updated

    def release_lease(self, lease: Lease) -> None:
        with self._tx() as con:
            try:
                ex = self._check(con, lease)
            except (LeaseLostError, ExecutionNotFoundError):
                return
            self._put(con, ex.evolve(lease_owner=None, lease_expires=None))

    # --- external events ------------------------------------------------------------------

    def _signal(self, con: sqlite3.Connection, execution_id: str, now: datetime) -> None:
        try:
            ex = self._get(con, execution_id)
        except ExecutionNotFoundError:
            return
        if ex.status is ExecutionStatus.RUNNING:
            self._put(con, ex.evolve(signal_seq=ex.signal_seq + 1, wake_at=now, updated_at=now))

    def _callback(self, con: sqlite3.Connection, callback_id: str) -> tuple[str, Operation]:
        row = con.execute(
            "SELECT execution_id, op_id, data FROM operations WHERE callback_id=?",
            (callback_id,),
        ).fetchone()
        if row is None:
            raise CallbackNotFoundError(
                "No callback has this token. Check that it was copied whole and comes from "
                "this store; tokens cannot be guessed or reconstructed."
            )
        execution_id, op_id, data = row
        op = self._parse(
            Operation.model_validate_json,
            data,
            f"operation row {op_id!r} of execution {execution_id!r}",
        )
        return execution_id, op

    def _put_op(self, con: sqlite3.Connection, execution_id: str, op: Operation) -> None:
        con.execute(
            "UPDATE operations SET data=? WHERE execution_id=? AND op_id=?",
            (op.model_dump_json(), execution_id, op.id),
        )

    def complete_callback(
        self, callback_id: str, outcome: CallbackOutcome, now: datetime
    ) -> Operation:
        with self._tx() as con:
            execution_id, op = self._callback(con, callback_id)
            if op.status is not OperationStatus.STARTED:
                raise CallbackAlreadyCompletedError(
                    f"Callback {op.name!r} of execution {execution_id!r} is already "
                    f"{op.status.value}; a callback completes once. Nothing was changed."
                )
            done = op.evolve(
                status=outcome.status, result=outcome.result, error=outcome.error, ended_at=now
            )
            self._put_op(con, execution_id, done)
            self._signal(con, execution_id, now)
            return done

    def heartbeat_callback(self, callback_id: str, now: datetime) -> Operation:
        with self._tx() as con:
            execution_id, op = self._callback(con, callback_id)
            if op.status is not OperationStatus.STARTED:
                raise CallbackAlreadyCompletedError(
                    f"Callback {op.name!r} of execution {execution_id!r} is already "
                    f"{op.status.value}; a heartbeat cannot revive it."
                )
            deadline = (
                now + timedelta(seconds=op.heartbeat_timeout_s)
                if op.heartbeat_timeout_s is not None
                else None
            )
            beat = op.evolve(heartbeat_deadline=deadline)
            self._put_op(con, execution_id, beat)
            self._signal(con, execution_id, now)
            return beat

    def request_cancel(self, execution_id: str, reason: str, now: datetime) -> Execution:
        with self._tx() as con:
            ex = self._get(con, execution_id)
            if ex.status.is_terminal:
                raise ExecutionNotRunningError(
                    f"Execution {execution_id!r} already finished ({ex.status.value}); "
                    "there is nothing to cancel."
                )
            self._put(con, ex.evolve(cancel_requested=reason))
            self._signal(con, execution_id, now)
            return self._get(con, execution_id)

    def close(self) -> None:
        with self._lock:
            try:
                self._con.close()
            except sqlite3.Error as e:  # pragma: no cover - closing a broken handle
                raise StoreError(f"closing {self.path}: {e}") from e
