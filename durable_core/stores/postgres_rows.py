"""Records to and from the rows of a :class:`~durable_core.stores.postgres.PostgresStore`.

Part of the PostgreSQL store, split out of :mod:`~durable_core.stores.postgres` to keep
modules small: its names stay private (underscored) and only that module imports them.

Invariants:

- **The JSON is the record**: :func:`_row` copies the indexed fields from the record it
  serialises, so the two cannot disagree; NUL (which PostgreSQL text cannot hold, and the
  JSON escapes) becomes U+FFFD in the copies only.
- **Validated on read**: a record that does not parse, or holds the record of another id,
  raises CorruptRecordError naming its row (:func:`_parse`); a journal is validated
  without per-row strings (:func:`_operations`), the message built only on failure.
- Messages name the store as ``PostgreSQL store host:port/db`` (:func:`_where`), never
  the password.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from durable_core.errors import CorruptRecordError, StoreError
from durable_core.records import Execution, Operation
from durable_core.stores.sqlite_rows import _us


def _signalled(ex: Execution, now: datetime) -> Execution:
    """``ex`` after an external event: ``signal_seq`` bumped and due now."""
    return ex.evolve(signal_seq=ex.signal_seq + 1, wake_at=now, updated_at=now)


def _copy(text: str | None) -> str | None:
    """A field copied to an index column: PostgreSQL text cannot hold NUL (the record can)."""
    return None if text is None else text.replace("\x00", "\ufffd")


def _row(ex: Execution) -> tuple[Any, ...]:
    """The parameters of ``_INSERT`` / ``_UPDATE`` for ``ex`` (copies taken from the record)."""
    head = (ex.status.value, _us(ex.wake_at), ex.lease_owner, _us(ex.lease_expires), ex.fence)
    error_type = None if ex.error is None else _copy(ex.error.type)
    copies = (_copy(ex.function), _copy(ex.role), error_type, _copy(ex.waiting_for))
    return (*head, ex.signal_seq, _us(ex.created_at), *copies, ex.model_dump_json(), ex.id)


def _where(dsn: str) -> str:
    """``PostgreSQL store host:port/db`` for messages: never the password."""
    import psycopg  # here: postgres.py explains a missing psycopg before this runs

    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as e:
        raise StoreError(f"the PostgreSQL connection string does not parse: {e}") from None
    host, port, db = info.get("host", "localhost"), info.get("port", "5432"), info.get("dbname")
    return f"PostgreSQL store {host}:{port}/{db or info.get('user') or '?'}"


def _parse(store: str, model: type[Any], record: str, key: str, *, what: str, where: str) -> Any:
    try:
        found = model.model_validate_json(record)
    except (ValueError, TypeError) as e:
        raise CorruptRecordError(
            f"{what} in {store} does not parse ({e}). Restore it from a backup, or "
            f"inspect the row ({where}) with psql."
        ) from e
    if found.id != key:
        raise CorruptRecordError(
            f"{what} in {store} holds the record of {found.id!r}; inspect the row "
            f"({where}) with psql."
        )
    return found


def _execution(where: str, execution_id: str, record: str) -> Execution:
    what = f"The record of execution {execution_id!r}"
    row = f"durable_executions, id={execution_id!r}"
    ex: Execution = _parse(where, Execution, record, execution_id, what=what, where=row)
    return ex


def _operation(where: str, execution_id: str, op_id: str, seq: int, record: str) -> Operation:
    what = f"Operation {op_id!r} (row seq={seq}) of execution {execution_id!r}"
    op: Operation = _parse(
        where, Operation, record, op_id, what=what, where=f"durable_operations, {seq=}"
    )
    return op


def _operations(where: str, execution_id: str, rows: list[tuple[str, int, str]]) -> list[Operation]:
    validate = Operation.model_validate_json
    ops: list[Operation] = []
    try:
        for op_id, _seq, record in rows:
            op = validate(record)
            if op.id != op_id:
                raise ValueError(op_id)
            ops.append(op)
    except (ValueError, TypeError):
        _operation(where, execution_id, *rows[len(ops)])  # raises, naming the row
        raise  # pragma: no cover - _operation checks the same things
    return ops
