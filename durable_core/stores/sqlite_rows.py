"""Records to and from the rows of a :class:`~durable_core.stores.sqlite.SQLiteStore`.

Part of the SQLite store, split out of :mod:`~durable_core.stores.sqlite` to keep modules
small: its names stay private (underscored) and only that module imports them.

Invariants:

- **UTC**: records are written with every datetime in UTC (naive input is taken as UTC),
  so they come back aware in UTC; the indexed copies are integer epoch microseconds.
- **The JSON is the record**: :func:`_row` copies the indexed fields from the
  record it serialises, so the two cannot disagree.
- **Validated on read, as bytes**: a record read as a BLOB is handed to pydantic as bytes,
  never decoded by ``sqlite3``; one that does not parse, is not UTF-8, or holds the record
  of another id raises CorruptRecordError naming its row (writes through it would land on,
  or replay in place of, another row).
- **A journal is validated without per-row strings** (:func:`_operations`, the hot
  path of every resume); the message naming a bad row is built only on failure.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import BaseModel

from durable_core.errors import CorruptRecordError
from durable_core.records import Execution, Operation

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = timedelta(0)
_M = TypeVar("_M", bound=BaseModel)
_R = TypeVar("_R", Execution, Operation)
"""A stored record kind: both carry the ``id`` they are stored under."""


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
    """The parameters of ``_INSERT`` / ``_UPDATE`` (:mod:`~durable_core.stores.sqlite_schema`)
    for ``ex``."""
    ex = _utc(ex)
    head = (ex.status.value, _us(ex.wake_at), ex.lease_owner, _us(ex.lease_expires), ex.fence)
    return (*head, ex.signal_seq, _us(ex.created_at), ex.model_dump_json(), ex.id)


def _parse(
    path: Path, model: type[_R], record: str | bytes, key: str, *, what: str, where: str
) -> _R:
    """Validate ``record`` as the ``model`` stored under ``key``; else CorruptRecordError.

    Records are read as BLOBs (SQLite does not check an encoding) and handed to pydantic
    as bytes, which refuses invalid UTF-8 like any other malformed JSON; the decode below
    only runs on failure, to say which it was. A record holding another key's record is
    corrupt too: writes through it would land on, or replay in place of, another row.
    """
    try:
        found = model.model_validate_json(record)  # written in UTC ("Z") by the store
    except (ValueError, TypeError) as e:
        problem = f"does not parse ({e})"
        if isinstance(record, bytes):
            try:
                record.decode()
            except UnicodeDecodeError as u:
                problem = f"is not UTF-8 text ({u})"
        raise CorruptRecordError(
            f"{what} in {path} {problem}. Restore the file from a backup, "
            f"or inspect the row ({where}) with the sqlite3 shell."
        ) from e
    if found.id != key:
        kind = "execution" if model is Execution else "operation"
        raise CorruptRecordError(
            f"{what} in {path} holds the record of {kind} {found.id!r}. Restore the "
            f"file from a backup, or inspect the row ({where})."
        )
    return found


def _execution(path: Path, execution_id: str, record: str | bytes) -> Execution:
    """The execution ``execution_id`` from its ``record`` column in the file at ``path``."""
    what = f"The record of execution {execution_id!r}"
    where = f"executions, id={execution_id!r}"
    return _parse(path, Execution, record, execution_id, what=what, where=where)


def _operations(path: Path, execution_id: str, rows: list[tuple[Any, ...]]) -> list[Operation]:
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
        _operation(path, execution_id, *rows[len(ops)])  # raises, naming the row
        raise CorruptRecordError(  # pragma: no cover - _operation checks the same things
            f"The journal of execution {execution_id!r} in {path} does not parse ({e})."
        ) from e
    return ops


def _operation(
    path: Path, execution_id: str, op_id: str | bytes, seq: int, record: str | bytes
) -> Operation:
    """One journal row (``op_id`` and ``record`` as read, ``seq`` its position)."""
    op_id = _text(op_id)  # a bad one fails the id check
    what = f"Operation {op_id!r} (row seq={seq}) of execution {execution_id!r}"
    return _parse(path, Operation, record, op_id, what=what, where=f"operations, seq={seq}")
