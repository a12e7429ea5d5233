"""The items of a :class:`~durable_core.stores.dynamodb.DynamoDBStore` table, and records to
and from them (the design is in ``docs/dynamodb-store.md``).

Part of the DynamoDB store, split out of :mod:`~durable_core.stores.dynamodb` to keep modules
small: its names stay as they were there (private ones underscored) and only the DynamoDB
store's modules import them.

- execution ``EXEC#<id>``/``#META``: ``rec`` (JSON of the fields only the lease holder
  writes) + native attributes for fields others change concurrently (status, fence,
  signal_seq, recoveries, op_count, lease, wake, stops), each written by a conditional
  update;
- operation ``EXEC#<id>``/``OP#<op id>``: ``rec`` (Operation JSON), ``seq`` (first write);
- callback token ``CB#<token>``/``#CB`` -> ``eid``, ``oid`` (a consistent lookup).

Invariants:
- Native timestamps are integer epoch microseconds, UTC (a naive datetime is taken as UTC).
- An execution item written whole (:func:`_exec_item`) carries the due-index keys
  (``due_pk``/``wake_us``) only if it is RUNNING with a wake time.
- An item that would pass DynamoDB's 400 KB limit is refused with PayloadTooLargeError
  before anything is sent; one read back that does not parse raises CorruptRecordError
  naming its key. Records are JSON: nothing is ever pickled.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from durable_core.errors import CorruptRecordError, PayloadTooLargeError
from durable_core.records import Execution, ExecutionStatus, Operation
from durable_core.stores.base import operation_json

Item = dict[str, Any]
ITEM_LIMIT = 400 * 1024
DUE = "DUE"
_META, _OP, _CB, _RUN = "#META", "OP#", "#CB", ExecutionStatus.RUNNING.value
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOT = {"status", "fence", "signal_seq", "lease_owner", "lease_expires", "wake_at"}
_HOT |= {"updated_at", "stop_requests", "recovery_attempts"}


def _us(dt: datetime) -> int:
    aware = dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def _dt(value: str) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _opt(item: Item, name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(next(iter(value.values())))


def _size(item: Item) -> int:
    """An item's size as DynamoDB counts it (names + values; numbers counted generously)."""
    return sum(len(k.encode()) + len(str(next(iter(v.values()))).encode()) for k, v in item.items())


def _where(item: Item) -> str:
    return f"PK={_opt(item, 'PK')!r} SK={_opt(item, 'SK')!r}"


def _exec_item(ex: Execution, op_count: int, expires: int | None) -> Item:
    """The whole item of ``ex`` (``expires``: its TTL in epoch seconds, if finished)."""
    item: Item = {
        "PK": _s(f"EXEC#{ex.id}"),
        "SK": _s(_META),
        "rec": _s(ex.model_dump_json(exclude=_HOT)),
        "status": _s(ex.status.value),
        "fence": _n(ex.fence),
        "signal_seq": _n(ex.signal_seq),
        "recoveries": _n(ex.recovery_attempts),
        "op_count": _n(op_count),
        "updated_us": _n(_us(ex.updated_at)),
        "list_pk": _s("EXEC"),
        "created_us": _n(_us(ex.created_at)),
    }
    if ex.lease_owner is not None and ex.lease_expires is not None:
        item |= {"lease_owner": _s(ex.lease_owner), "lease_exp_us": _n(_us(ex.lease_expires))}
    if ex.wake_at is not None and ex.status is ExecutionStatus.RUNNING:
        item |= {"wake_us": _n(_us(ex.wake_at)), "due_pk": _s(DUE)}
    if ex.stop_requests:
        item["stops"] = {"L": [_s(r.model_dump_json()) for r in ex.stop_requests]}
    if expires is not None:
        item["expires_at"] = _n(expires)
    if _size(item) > ITEM_LIMIT:
        raise PayloadTooLargeError(
            f"execution {ex.id!r} is {_size(item)} bytes as a DynamoDB item (limit 400 KB); "
            "keep inputs and results small (store large data elsewhere, pass a reference)",
            operation=ex.id,
        )
    return item


def _execution(item: Item) -> Execution:
    """The execution an item holds: ``rec`` with the native attributes laid over it."""
    try:
        data = json.loads(item["rec"]["S"])
        lease_exp, wake = _opt(item, "lease_exp_us"), _opt(item, "wake_us")
        data.update(
            status=item["status"]["S"],
            fence=int(item["fence"]["N"]),
            signal_seq=int(item["signal_seq"]["N"]),
            lease_owner=_opt(item, "lease_owner"),
            lease_expires=None if lease_exp is None else _dt(lease_exp),
            wake_at=None if wake is None else _dt(wake),
            updated_at=_dt(item["updated_us"]["N"]),
            stop_requests=[json.loads(v["S"]) for v in item.get("stops", {}).get("L", [])],
            recovery_attempts=int(_opt(item, "recoveries") or 0),  # absent: older items
        )
        return Execution.model_validate(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CorruptRecordError(f"execution item {_where(item)} does not parse: {exc}") from exc


def _operation(item: Item) -> Operation:
    """The operation record an item holds."""
    try:
        return Operation.model_validate_json(item["rec"]["S"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptRecordError(f"operation item {_where(item)} does not parse: {exc}") from exc


def _op_rec(eid: str, op: Operation) -> str:
    """The ``rec`` attribute of ``op``, refused if its item would pass the item limit."""
    rec = operation_json(op)
    size = len(rec.encode()) + len(eid) + len(op.id) + 64
    if size > ITEM_LIMIT:
        raise PayloadTooLargeError(
            f"operation {op.name or op.id!r} (id {op.id}) of execution {eid!r} is {size} "
            "bytes as a DynamoDB item; the limit is 400 KB. Return a smaller value (store "
            "large data elsewhere and return a reference). Nothing was written.",
            operation=op.name or op.id,
        )
    return rec
