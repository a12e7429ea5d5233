"""The database behind a :class:`~durable_core.stores.postgres.PostgresStore`: its tables,
the statements the store runs on them, and how the schema is created, migrated and checked.

Part of the PostgreSQL store, split out of :mod:`~durable_core.stores.postgres` to keep
modules small: its names stay private (underscored, but for :data:`SCHEMA_VERSION` and
:data:`MIGRATIONS`) and only that module imports them.

Invariants:

- **Versioned schema**: the ``durable_schema_version`` table holds one row per migration
  applied. :func:`_migrate` runs in one transaction under a transaction-scoped advisory
  lock, so processes opening a new database at once are safe (one creates, the others
  wait and then find it made). A database of a newer version than :data:`SCHEMA_VERSION`
  is refused with SchemaVersionError and left untouched.
- **The JSON is the record**: ``record`` columns (type ``json``, which keeps the text as
  written and refuses text that is not JSON) hold the pydantic model's JSON; the other
  columns are copies of its fields for indexes, written in the same statement.
- **Times are epoch microseconds** (``bigint``), as in the SQLite store; ids are
  ``COLLATE "C"`` so they sort by code point, as Python (and the listing cursor) does.
"""

from __future__ import annotations

from typing import Any

from durable_core.errors import SchemaVersionError, StoreError

SCHEMA_VERSION = 1
"""The layout this module reads and writes (highest ``durable_schema_version.version``)."""

_LOCK_KEY = 0x64757261626C65  # "durable": the advisory lock migrations take

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE durable_executions (
            id text COLLATE "C" PRIMARY KEY, status text NOT NULL, wake_at bigint,
            lease_owner text, lease_expires bigint, fence bigint NOT NULL,
            signal_seq bigint NOT NULL, created_at bigint NOT NULL, function text NOT NULL,
            role text, error_type text, waiting_for text, record json NOT NULL)""",
        "CREATE INDEX durable_executions_due ON durable_executions (status, wake_at, id)",
        "CREATE INDEX durable_executions_listing ON durable_executions (created_at, id)",
        "CREATE INDEX durable_executions_status_listing "
        "ON durable_executions (status, created_at, id)",
        """CREATE TABLE durable_operations (
            seq bigserial PRIMARY KEY, execution_id text COLLATE "C" NOT NULL,
            op_id text COLLATE "C" NOT NULL, callback_id text UNIQUE, record json NOT NULL,
            UNIQUE (execution_id, op_id))""",
        "CREATE TABLE durable_audit (seq bigserial PRIMARY KEY, record json NOT NULL)",
    ),
}
"""Statements that bring the schema from ``version - 1`` to ``version``."""

_INSERT = (
    "INSERT INTO durable_executions (status, wake_at, lease_owner, lease_expires, fence, "
    "signal_seq, created_at, function, role, error_type, waiting_for, record, id) VALUES "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING"
)
_UPDATE = (
    "UPDATE durable_executions SET (status, wake_at, lease_owner, lease_expires, fence, "
    "signal_seq, created_at, function, role, error_type, waiting_for, record) = "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) WHERE id = %s"
)
_GET = "SELECT record::text FROM durable_executions WHERE id = %s"
_LOCK = "SELECT record::text FROM durable_executions WHERE id = %s FOR UPDATE"
_UPSERT_OP = (
    "INSERT INTO durable_operations (execution_id, op_id, callback_id, record) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (execution_id, op_id) DO UPDATE "
    "SET callback_id = excluded.callback_id, record = excluded.record"
)
_DUE = (  # keyset pages over (wake_at, id), so skipped rows do not use up the limit;
    # rows another transaction holds are skipped, not waited for
    "SELECT id, wake_at, record::text FROM durable_executions WHERE status = 'RUNNING' "
    "AND wake_at <= %(now)s AND (lease_owner IS NULL OR lease_expires IS NULL "
    "OR lease_expires <= %(now)s) AND (wake_at, id) > (%(wake)s, %(id)s) "
    "ORDER BY wake_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
)
_LIST = "SELECT id, record::text FROM durable_executions ORDER BY created_at DESC, id LIMIT %s"
_LIST_STATUS = (
    "SELECT id, record::text FROM durable_executions WHERE status = %s "
    "ORDER BY created_at DESC, id LIMIT %s"
)
_OPS = (
    "SELECT op_id, seq, record::text FROM durable_operations WHERE execution_id = %s ORDER BY seq"
)
_EXISTS = "SELECT 1 FROM durable_executions WHERE id = %s"
_CALLBACK_OWNER = "SELECT execution_id FROM durable_operations WHERE callback_id = %s"
_CALLBACK = (
    "SELECT seq, execution_id, op_id, record::text FROM durable_operations "
    "WHERE callback_id = %s FOR UPDATE"
)
_SET_OP = "UPDATE durable_operations SET record = %s WHERE seq = %s"
_AUDIT_INSERT = "INSERT INTO durable_audit (record) VALUES (%s)"
_AUDIT_PAGE = (
    "SELECT seq, record::text FROM durable_audit WHERE seq < %s ORDER BY seq DESC LIMIT %s"
)


def _migrate(cur: Any, where: str, *, create: bool = True) -> None:
    """Create or migrate the schema, or refuse a newer one (run in one transaction).

    With ``create=False`` a database without the schema is a StoreError (nothing created).
    """
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    cur.execute("SELECT to_regclass('durable_schema_version') IS NOT NULL")
    if cur.fetchone()[0]:
        cur.execute("SELECT coalesce(max(version), 0) FROM durable_schema_version")
        found = int(cur.fetchone()[0])
    else:
        cur.execute("SELECT to_regclass('durable_executions') IS NOT NULL")
        if cur.fetchone()[0]:
            raise SchemaVersionError(
                f"{where} holds durable_* tables but no durable_schema_version table: it is "
                "not a schema this durable-saga wrote. Point the store at another database "
                "(or another schema with ?options=-csearch_path=NAME); nothing was changed."
            )
        if not create:
            raise StoreError(
                f"{where} holds no durable-saga schema: no execution was ever stored in it. "
                "Start an execution first (`durable run ...`), or point --store at the "
                "database your workers use."
            )
        cur.execute("CREATE TABLE durable_schema_version (version integer PRIMARY KEY)")
        found = 0
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{where} has schema version {found}, written by a newer durable-saga; this one "
            f"reads version {SCHEMA_VERSION}. Upgrade durable-saga (pip install -U "
            "'durable-saga[postgres]') on every worker to use it; nothing was changed."
        )
    for version in range(found + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            cur.execute(statement)
        cur.execute("INSERT INTO durable_schema_version (version) VALUES (%s)", (version,))
