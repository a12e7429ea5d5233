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
  Rows are validated on read: one that does not parse (or is not UTF-8: records are read
  as bytes and decoded here, never by ``sqlite3``) raises CorruptRecordError naming it.
  ``claim_due`` and ``list_executions`` log and skip it, so it cannot stall every worker or
  hide every other execution. Nothing is pickled.
- **Fenced writes**: a write under a lease checks fence and owner in its own transaction.
- **First-write order**: ``operations.seq`` is set on first insert; an upsert keeps it.
- **UTC**: datetimes come back aware in UTC (naive input is taken as UTC); the indexed
  copies are integer epoch microseconds.
- **Owner-only when new**: a store file this class creates is ``0600`` (SQLite gives its
  ``-wal`` and ``-shm`` side files the main file's mode) and the folders it creates are
  ``0700``: the file holds inputs, results and callback tokens. An existing file or folder
  keeps its mode (``chmod 600`` it yourself); nothing is changed behind the user's back.
- **Versioned schema**: ``meta.schema_version`` and the layout are checked on open
  (SchemaVersionError, file untouched); creation is one ``BEGIN IMMEDIATE`` transaction,
  so processes opening a new file at once are safe.
"""

from __future__ import annotations

import functools
import gc
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import structlog
from pydantic import BaseModel

from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    CorruptRecordError,
    ExecutionNotFoundError,
    LeaseLostError,
    SchemaVersionError,
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
from durable_core.stores.base import (
    InvocationEnd,
    check_callback_access,
    check_stop,
    operation_json,
    recovered,
)
from durable_core.stores.sqlite_commit import GroupCommit

SCHEMA_VERSION = 1
"""The layout this module reads and writes (``meta.schema_version``)."""

_OPS_ORDER_INDEX = (  # loads a journal in seq order without sorting it (added in 0.1.0)
    "CREATE INDEX IF NOT EXISTS operations_order ON operations (execution_id, seq)"
)
_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE executions (
        id TEXT PRIMARY KEY, status TEXT NOT NULL, wake_at INTEGER, lease_owner TEXT,
        lease_expires INTEGER, fence INTEGER NOT NULL, signal_seq INTEGER NOT NULL,
        created_at INTEGER NOT NULL, record TEXT NOT NULL)""",
    "CREATE INDEX executions_due ON executions (status, wake_at)",
    "CREATE INDEX executions_created ON executions (created_at)",
    "CREATE INDEX executions_status_created ON executions (status, created_at)",
    """CREATE TABLE operations (
        seq INTEGER PRIMARY KEY, execution_id TEXT NOT NULL, op_id TEXT NOT NULL,
        callback_id TEXT, record TEXT NOT NULL, UNIQUE (execution_id, op_id))""",
    "CREATE UNIQUE INDEX operations_callback ON operations (callback_id)",
    _OPS_ORDER_INDEX,
)
_LAYOUT = {
    "executions": "id status wake_at lease_owner lease_expires fence signal_seq created_at record",
    "operations": "seq execution_id op_id callback_id record",
}
_INSERT = (
    "INSERT INTO executions (status, wake_at, lease_owner, lease_expires, fence, signal_seq, "
    "created_at, record, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
_UPDATE = (
    "UPDATE executions SET (status, wake_at, lease_owner, lease_expires, fence, signal_seq, "
    "created_at, record) = (?, ?, ?, ?, ?, ?, ?, ?) WHERE id = ?"
)
_UPSERT_OP = (
    "INSERT INTO operations (execution_id, op_id, callback_id, record) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (execution_id, op_id) DO UPDATE "
    "SET callback_id = excluded.callback_id, record = excluded.record"
)
_DUE = (  # keyset pages over (wake_at, rowid), so skipped rows do not use up the limit;
    # id and record as bytes: text that is not UTF-8 must be one skipped row, not a failed claim
    "SELECT rowid, CAST(id AS BLOB), wake_at, CAST(record AS BLOB) FROM executions "
    "WHERE status = 'RUNNING' "
    "AND wake_at <= :now AND (lease_owner IS NULL OR lease_expires IS NULL "
    "OR lease_expires <= :now) AND (wake_at, rowid) > (:wake, :rowid) "
    "ORDER BY wake_at, rowid LIMIT :limit"
)
_LIST = (  # id and record as bytes, as in _DUE: a row that is not UTF-8 is one skipped row
    "SELECT CAST(id AS BLOB), CAST(record AS BLOB) FROM executions "
    "ORDER BY created_at DESC, rowid LIMIT ?"
)
_LIST_STATUS = (
    "SELECT CAST(id AS BLOB), CAST(record AS BLOB) FROM executions WHERE status = ? "
    "ORDER BY created_at DESC, rowid LIMIT ?"
)
_OPS = (  # op_id and record as bytes, validated as such; see _operations
    "SELECT CAST(op_id AS BLOB), seq, CAST(record AS BLOB) FROM operations "
    "WHERE execution_id = ? ORDER BY seq"
)
_EXISTS = "SELECT 1 FROM executions WHERE id = ?"
_FENCED_UPSERT_OP = (  # _UPSERT_OP if the lease is held (fence, owner), as one statement
    "INSERT INTO operations (execution_id, op_id, callback_id, record) SELECT ?, ?, ?, ? "
    "WHERE EXISTS (SELECT 1 FROM executions WHERE id = ? AND fence = ? AND lease_owner = ?) "
    "ON CONFLICT (execution_id, op_id) DO UPDATE "
    "SET callback_id = excluded.callback_id, record = excluded.record"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = timedelta(0)
_M = TypeVar("_M", bound=BaseModel)
_R = TypeVar("_R", Execution, Operation)
"""A stored record kind: both carry the ``id`` they are stored under."""
_T = TypeVar("_T")
_log = structlog.get_logger("durable.store")


def _aware(dt: datetime) -> datetime:
    """``dt`` in UTC; a naive datetime is taken to be UTC already."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _is_utc(dt: datetime) -> bool:
    return dt.tzinfo is not None and dt.utcoffset() == _ZERO


def _us(dt: datetime | None) -> int | None:
    """Integer epoch microseconds (what the indexed columns hold)."""
    return None if dt is None else (_aware(dt) - _EPOCH) // timedelta(microseconds=1)


def _utc(model: _M) -> _M:
    """``model`` with every datetime field in UTC; untouched (no copy) if they all are.

    Records parsed from the file carry pydantic's own UTC tzinfo, which is UTC too: compare
    offsets, not tzinfo objects, or every replayed record would be copied.
    """
    changes: dict[str, datetime] = {}
    for name in _datetime_fields(type(model)):
        value = getattr(model, name)
        if value is not None and not _is_utc(value):
            changes[name] = _aware(value)
    return model.model_copy(update=changes) if changes else model


@functools.cache
def _datetime_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` annotated ``datetime`` or ``datetime | None``."""
    return tuple(
        name
        for name, field in model.model_fields.items()
        if field.annotation is datetime or datetime in get_args(field.annotation)
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Defer the cyclic garbage collector while a journal's records are built.

    Validating thousands of rows allocates only acyclic objects, yet every 700 allocations
    start a collection that walks the growing young generations: measured on a
    10,000-step resume it made loading grow faster than the journal (~8 -> ~10 us per
    step). Reference counting still frees everything; the collector runs again after.
    Only re-enabled here if it was enabled on entry (a caller that turned it off keeps it
    off; overlapping threads at worst defer a collection a little longer).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _text(raw: str | bytes | None) -> str:
    """An id read as a BLOB, as text; bytes that are not UTF-8 become U+FFFD (a key that then
    matches no record, so the row is reported as corrupt, naming what could be read)."""
    if isinstance(raw, str):
        return raw
    return (raw or b"").decode("utf-8", "replace")


def _row(ex: Execution) -> tuple[Any, ...]:
    """The parameters of ``_INSERT`` / ``_UPDATE`` for ``ex``."""
    ex = _utc(ex)
    head = (ex.status.value, _us(ex.wake_at), ex.lease_owner, _us(ex.lease_expires), ex.fence)
    return (*head, ex.signal_seq, _us(ex.created_at), ex.model_dump_json(), ex.id)


def _signalled(ex: Execution, now: datetime) -> Execution:
    """``ex`` after an external event: ``signal_seq`` bumped and due now."""
    return ex.evolve(signal_seq=ex.signal_seq + 1, wake_at=now, updated_at=now)


def _enter_wal(db: sqlite3.Connection, busy_timeout_s: float) -> object:
    """Switch ``db`` to WAL, retrying while another process holds the lock.

    Changing the journal mode needs an exclusive lock, and SQLite returns "database is
    locked" at once (without its busy handler) when two connections race to do it on a new
    file. So retry here for as long as the caller agreed to wait for a lock.
    """
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            return db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _create_owner_only(path: Path) -> None:
    """Create the missing folders of ``path`` (0700) and, if it is new, an empty file (0600).

    SQLite would create the file with the umask's mode (usually world-readable); an empty
    file is a valid new database, so creating it here first fixes its mode, and SQLite
    gives the ``-wal``/``-shm`` files the same one. ``O_EXCL`` makes a race with another
    process opening the same new store harmless: one creates, the other opens.
    """
    for folder in reversed([p for p in (path.parent, *path.parent.parents) if not p.exists()]):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another process made it first
        os.chmod(folder, 0o700)  # exactly, whatever the umask
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.chmod(path, 0o600)
    finally:
        os.close(fd)


class SQLiteStore:
    """A :class:`~durable_core.stores.base.Store` in one SQLite file.

    Args:
        path: The database file; missing parent directories are created. A new file is
            created owner-only (0600, its folders 0700); an existing one keeps its mode.
        durability: ``"full"`` fsyncs every commit before returning; ``"normal"`` may lose
            the last commits on power loss (never corrupts the file).
        busy_timeout_s: How long a call waits for another process's write lock before it
            fails with :class:`~durable_core.errors.StoreError`.

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
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.path = Path(path)
        try:
            _create_owner_only(self.path)
        except OSError as e:
            raise StoreError(f"cannot create the SQLite store {self.path}: {e}") from e
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            mode = _enter_wal(self._db, busy_timeout_s)
            self._db.execute(f"PRAGMA synchronous = {durability.upper()}")
            self._commits = GroupCommit(self._db, self._lock, f"SQLite store {self.path}")
        except sqlite3.Error as e:
            raise StoreError(
                f"{self.path} cannot be opened as a durable-saga SQLite store ({e}). "
                "Is it another kind of file? Point the store at a new path."
            ) from e
        try:
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{self.path}: SQLite refused WAL journal mode (got {mode!r}); "
                    "keep the store on a local file system."
                )
            self._check_schema()
        except BaseException:
            self._db.close()
            raise

    def _check_schema(self) -> None:
        def tx(db: sqlite3.Connection) -> None:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                return
            row = None
            if "meta" in tables:
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            found = str(row[0]) if row else "none"
            if found.isdigit() and int(found) > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{self.path} has schema version {found}, written by a newer durable-saga; "
                    f"this one reads version {SCHEMA_VERSION}. Upgrade durable-saga "
                    "(pip install -U durable-saga) to open it; the file was not changed."
                )
            layout = {
                t: " ".join(c[1] for c in db.execute(f"PRAGMA table_info({t})")) for t in _LAYOUT
            }
            if found != str(SCHEMA_VERSION) or layout != _LAYOUT:
                raise SchemaVersionError(
                    f"{self.path} is not a store this durable-saga can read: schema version "
                    f"{found} (expected {SCHEMA_VERSION}), tables {sorted(tables)}. It has an "
                    "older or unknown layout, or is another program's database; the file was "
                    "not changed. Point the store at another file."
                )
            db.execute(_OPS_ORDER_INDEX)  # an index only: files without it stay readable

        self._write(tx)

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
        return self._commits.run(fn)

    def _parse(self, model: type[_R], record: str | bytes, key: str, what: str, where: str) -> _R:
        """Validate ``record`` as the ``model`` stored under ``key``; else CorruptRecordError.

        Records are read as BLOBs (SQLite does not check an encoding) and handed to pydantic
        as bytes, which refuses invalid UTF-8 like any other malformed JSON; the decode below
        only runs on failure, to say which it was. A record holding another key's record is
        corrupt too: writes through it would land on, or replay in place of, another row.
        """
        try:
            found = model.model_validate_json(record)  # written in UTC ("Z") by this class
        except (ValueError, TypeError) as e:
            problem = f"does not parse ({e})"
            if isinstance(record, bytes):
                try:
                    record.decode()
                except UnicodeDecodeError as u:
                    problem = f"is not UTF-8 text ({u})"
            raise CorruptRecordError(
                f"{what} in {self.path} {problem}. Restore the file from a backup, "
                f"or inspect the row ({where}) with the sqlite3 shell."
            ) from e
        if found.id != key:
            kind = "execution" if model is Execution else "operation"
            raise CorruptRecordError(
                f"{what} in {self.path} holds the record of {kind} {found.id!r}. Restore the "
                f"file from a backup, or inspect the row ({where})."
            )
        return found

    def _execution(self, execution_id: str, record: str | bytes) -> Execution:
        what = f"The record of execution {execution_id!r}"
        return self._parse(
            Execution, record, execution_id, what, f"executions, id={execution_id!r}"
        )

    def _operations(self, execution_id: str, rows: list[tuple[Any, ...]]) -> list[Operation]:
        """Validate a journal's rows (the hot path of every resume: no per-row strings)."""
        validate = Operation.model_validate_json
        ops: list[Operation] = []
        try:
            for op_id, _seq, record in rows:
                op = validate(record)
                if op.id.encode() != op_id:  # else it would replay in place of another
                    raise ValueError(op_id)
                ops.append(op)
        except (ValueError, TypeError) as e:
            self._operation(execution_id, *rows[len(ops)])  # raises, naming the row
            raise CorruptRecordError(  # pragma: no cover - _operation checks the same things
                f"The journal of execution {execution_id!r} in {self.path} does not parse ({e})."
            ) from e
        return ops

    def _operation(
        self, execution_id: str, op_id: str | bytes, seq: int, record: str | bytes
    ) -> Operation:
        op_id = _text(op_id)  # a bad one fails the id check
        what = f"Operation {op_id!r} (row seq={seq}) of execution {execution_id!r}"
        return self._parse(Operation, record, op_id, what, f"operations, seq={seq}")

    def _find(self, db: sqlite3.Connection, execution_id: str) -> Execution | None:
        row = db.execute(
            "SELECT CAST(record AS BLOB) FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        return None if row is None else self._execution(execution_id, row[0])

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
                found.append(self._execution(eid, record))
            except CorruptRecordError as e:
                _log.error("list_executions skips an unreadable execution", error=str(e))
        return found

    def load_operations(self, execution_id: str) -> list[Operation]:
        """All journal records of an execution, in first-write order."""
        with _gc_paused():
            with self._read() as db:
                rows = db.execute(_OPS, (execution_id,)).fetchall()
                exists = rows or db.execute(_EXISTS, (execution_id,)).fetchone()
            if not exists:
                raise ExecutionNotFoundError(execution_id)
            return self._operations(execution_id, rows)

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
                        ex = self._execution(eid, record)
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
            changes |= {"recovery_attempts": 0}
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
            op = self._operation(execution_id, op_id, seq, record)
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

        def beat(op: Operation, t: datetime) -> Operation:
            timeout = op.heartbeat_timeout_s
            return op.evolve(
                heartbeat_deadline=None if timeout is None else t + timedelta(seconds=timeout)
            )

        return self._change_callback(callback_id, now, beat)

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
