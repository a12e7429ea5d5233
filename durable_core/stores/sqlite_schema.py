"""The file behind a :class:`~durable_core.stores.sqlite.SQLiteStore`: its tables, the
statements the store runs on them, and how the file is created, opened and checked.

Part of the SQLite store, split out of :mod:`~durable_core.stores.sqlite` to keep modules
small: its names stay private (underscored, but for :data:`SCHEMA_VERSION`) and only that
module imports them.

Invariants:

- **Owner-only when new**: a store file created here is ``0600`` (SQLite gives its ``-wal``
  and ``-shm`` side files the main file's mode) and the folders created here are ``0700``:
  the file holds inputs, results and callback tokens. An existing file or folder keeps its
  mode (``chmod 600`` it yourself); nothing is changed behind the user's back.
- **WAL, or not opened**: :func:`_open_file` switches the file to WAL (waiting out other
  processes doing the same for as long as the caller waits for a lock) and sets
  ``synchronous`` to the store's durability; a file SQLite will not put in WAL mode (a
  network file system) is refused with StoreError.
- **Read-only opens write nothing**: :func:`_open_read_only` opens an existing file with
  ``mode=ro`` and ``PRAGMA query_only``, takes no write lock and never changes the journal
  mode, so it reads behind a long writer; on a read-only file system (where no ``-shm``
  can be made) a file without a ``-wal`` beside it is opened ``immutable``, which is safe
  there because nothing on this mount can write it.
- **Versioned schema**: ``meta.schema_version`` and the layout are checked on open
  (SchemaVersionError, file untouched); :func:`_check_schema` runs in the store's
  ``BEGIN IMMEDIATE`` transaction, so creation is one transaction and processes opening a
  new file at once are safe. The one change made to an existing file is adding indexes
  and the ``audit`` table that files from before them lack (``operations_order``; the
  listing indexes), so a file stays readable by the version that wrote it.
- **Ids and records are read as BLOBs** by every statement here that returns them, so
  text that is not UTF-8 reaches :mod:`~durable_core.stores.sqlite_rows`, which reports it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Literal

from durable_core.errors import SchemaVersionError, StoreError

SCHEMA_VERSION = 1
"""The layout this module reads and writes (``meta.schema_version``)."""

_OPS_ORDER_INDEX = (  # loads a journal in seq order without sorting it (added in 0.1.0)
    "CREATE INDEX IF NOT EXISTS operations_order ON operations (execution_id, seq)"
)
_LISTING_INDEXES = (  # newest-first listings and searches (added for the server, 0.2)
    "CREATE INDEX IF NOT EXISTS executions_listing ON executions (created_at, id)",
    "CREATE INDEX IF NOT EXISTS executions_status_listing ON executions (status, created_at, id)",
)  # no index on a json_extract of the record: a damaged record would fail every write
_AUDIT_TABLE = (  # the server's audit log (added in 0.2; created in older files when opened)
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, record TEXT NOT NULL)"
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
    *_LISTING_INDEXES,
    _AUDIT_TABLE,
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
_AUDIT_INSERT = "INSERT INTO audit (record) VALUES (?)"
_AUDIT_PAGE = "SELECT seq, CAST(record AS BLOB) FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT ?"
_OPS = (  # op_id and record as bytes, validated as such (sqlite_rows._operations)
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


def _open_file(
    path: Path, *, durability: Literal["full", "normal"], busy_timeout_s: float
) -> sqlite3.Connection:
    """Open (creating it owner-only if new) the store file at ``path`` in WAL mode.

    Raises StoreError if the file or its folders cannot be created, if it cannot be opened
    as a SQLite database, or if SQLite refuses WAL (a network file system).
    """
    try:
        _create_owner_only(path)
    except OSError as e:
        raise StoreError(f"cannot create the SQLite store {path}: {e}") from e
    try:
        db = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        mode = _enter_wal(db, busy_timeout_s)
        db.execute(f"PRAGMA synchronous = {durability.upper()}")
    except sqlite3.Error as e:
        if _not_writable(path):
            raise StoreError(
                f"{path} cannot be written here ({e}): it or its folder is read-only (a "
                "read-only mount, or no write permission). Reading works as it is (`durable "
                "list`, `durable show`, SQLiteStore(path, read_only=True)); to run or signal "
                "executions, use it where it is writable."
            ) from e
        raise StoreError(
            f"{path} cannot be opened as a durable-saga SQLite store ({e}). "
            "Is it another kind of file? Point the store at a new path."
        ) from e
    if str(mode).lower() != "wal":
        db.close()
        raise StoreError(
            f"{path}: SQLite refused WAL journal mode (got {mode!r}); "
            "keep the store on a local file system."
        )
    return db


def _not_writable(path: Path) -> bool:
    """True if the store file or its folder cannot be written (read-only mount or mode)."""
    if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
        return True
    return not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK)


def _open_read_only(path: Path, *, busy_timeout_s: float) -> sqlite3.Connection:
    """Open the existing store file at ``path`` for reading only (module invariants).

    Raises StoreError if it is missing or cannot be read as a SQLite database.
    """
    if not path.is_file():
        raise StoreError(f"no store file at {path}")
    # Immutable only when there is no -wal to read (it would be ignored): a file that was
    # closed cleanly, on a file system nothing on this host can write through.
    read_only_fs = bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    immutable = read_only_fs and not path.with_name(path.name + "-wal").exists()
    uri = path.resolve().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")
    try:
        db = sqlite3.connect(
            uri, uri=True, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA query_only = ON")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as e:
        raise StoreError(
            f"{path} cannot be read as a durable-saga SQLite store ({e}). Check that it is "
            "a store file and that you may read it and its folder (the -wal and -shm files "
            "beside it too)."
        ) from e
    return db


def _check_schema(db: sqlite3.Connection, path: Path, *, read_only: bool = False) -> None:
    """Create the tables in an empty file, else check its version and layout.

    Run inside a ``BEGIN IMMEDIATE`` transaction on ``db`` (the store file at ``path``),
    or, with ``read_only``, on a read-only connection (nothing is created then); raises
    SchemaVersionError, changing nothing, for a file this version cannot read.
    """
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not tables and read_only:
        raise SchemaVersionError(f"{path} is empty: no execution was ever stored in it")
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
            f"{path} has schema version {found}, written by a newer durable-saga; "
            f"this one reads version {SCHEMA_VERSION}. Upgrade durable-saga "
            "(pip install -U durable-saga) to open it; the file was not changed."
        )
    layout = {t: " ".join(c[1] for c in db.execute(f"PRAGMA table_info({t})")) for t in _LAYOUT}
    if found != str(SCHEMA_VERSION) or layout != _LAYOUT:
        raise SchemaVersionError(
            f"{path} is not a store this durable-saga can read: schema version "
            f"{found} (expected {SCHEMA_VERSION}), tables {sorted(tables)}. It has an "
            "older or unknown layout, or is another program's database; the file was "
            "not changed. Point the store at another file."
        )
    if not read_only:  # additions only: files without them stay readable, and get them
        for added in (_OPS_ORDER_INDEX, *_LISTING_INDEXES, _AUDIT_TABLE):  # when first
            db.execute(added)  # opened for writing
