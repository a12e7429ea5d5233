"""Events from outside an invocation on the DynamoDB store's table: callback completions
and heartbeats, stop requests, and the signal that wakes an execution.

Part of the DynamoDB store, split out of :mod:`~durable_core.stores.dynamodb` to keep modules
small; :class:`~durable_core.stores.dynamodb.DynamoDBStore` calls these for
``complete_callback``, ``heartbeat_callback``, ``request_stop`` and to wake a parent.

Invariants:
- None of these holds a lease; each is a conditional write that re-checks what it read.
- A callback changes once: its token is looked up with a consistent read, then one
  transaction compare-and-sets the whole operation record (still the STARTED one that was
  read; otherwise CallbackAlreadyCompletedError, nothing changed) and wakes its execution.
  Of concurrent completions of one token exactly one wins.
- Finished stays finished: a signal (``signal_seq + 1``, due now) applies only to a RUNNING
  execution, checked on read and again by the write's condition.
- A stop request is one conditional update: RUNNING, and fewer than ``MAX_STOP_REQUESTS``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    CorruptRecordError,
    ExecutionNotFoundError,
    StoreError,
)
from durable_core.records import (
    MAX_STOP_REQUESTS,
    Execution,
    Operation,
    OperationStatus,
    StopRequest,
)
from durable_core.stores.base import check_callback_access, check_stop
from durable_core.stores.dynamodb_items import (
    _CB,
    _META,
    _OP,
    _RUN,
    DUE,
    Item,
    _execution,
    _n,
    _op_rec,
    _operation,
    _opt,
    _s,
    _us,
)
from durable_core.stores.dynamodb_table import _RejectedError, _Table

_SIGNAL = "SET signal_seq = signal_seq + :one, wake_us = :now, due_pk = :due, updated_us = :now"


def _signal_update(table: _Table, execution_id: str, now: datetime) -> Item | None:
    """The update that wakes a RUNNING execution; None if it is missing or finished."""
    item = table.get(f"EXEC#{execution_id}", _META)
    if item is None or _opt(item, "status") != _RUN:
        return None  # finished stays finished (and the condition re-checks RUNNING)
    values = {":one": _n(1), ":now": _n(_us(now)), ":due": _s(DUE), ":run": _s(_RUN)}
    return table.update(f"EXEC#{execution_id}", _META, _SIGNAL, "#st = :run", values)


def _change_callback(
    table: _Table,
    callback_id: str,
    now: datetime,
    change: Callable[[Operation], Operation],
    why: str,
    *,
    privileged: bool = False,
) -> Operation:
    """Apply ``change`` to the STARTED callback with this token and wake its execution, in
    one transaction; ``why`` says in the error why a callback that is no longer STARTED
    cannot change."""
    ref = table.get(f"CB#{callback_id}", _CB)
    if ref is None:
        raise CallbackNotFoundError(
            "No callback has this token. Check that it was copied whole and comes from "
            "this store; tokens cannot be guessed or reconstructed."
        )
    eid, op_id = ref["eid"]["S"], ref["oid"]["S"]
    for _ in range(10):
        item = table.get(f"EXEC#{eid}", _OP + op_id)
        if item is None:
            raise CorruptRecordError(  # named by its operation: the PK holds the token
                f"the callback item of operation {op_id!r} of execution {eid!r} names a "
                "missing operation"
            )
        op = _operation(item)
        check_callback_access(op, eid, privileged=privileged)
        if op.status is not OperationStatus.STARTED:
            raise CallbackAlreadyCompletedError(
                f"Callback {op.name!r} of execution {eid!r} is already {op.status.value}; "
                f"{why}. Nothing was changed."
            )
        new = change(op)
        # Compare-and-set on the whole record: it is still the STARTED one we read.
        values = {":r": _s(_op_rec(eid, new)), ":old": item["rec"]}
        items = [
            {
                "Update": table.update(
                    f"EXEC#{eid}", _OP + op_id, "SET rec = :r", "rec = :old", values
                )
            }
        ]
        signal = _signal_update(table, eid, now)
        items += [{"Update": signal}] if signal else []
        try:
            table.transact(items)
        except _RejectedError:
            continue  # the record or the execution changed under us: look again
        return new
    raise StoreError(f"callback of operation {op_id!r} of {eid!r} kept conflicting")


def _request_stop(
    table: _Table, execution_id: str, request: StopRequest, now: datetime
) -> Execution:
    """Append ``request`` to a RUNNING execution's stop requests and make it due now."""
    values: Item = {":one": _n(1), ":now": _n(_us(now)), ":due": _s(DUE), ":run": _s(_RUN)}
    values |= {":new": {"L": [_s(request.model_dump_json())]}, ":none": {"L": []}}
    values[":max"] = _n(MAX_STOP_REQUESTS)
    expr = _SIGNAL + ", stops = list_append(if_not_exists(stops, :none), :new)"
    cond = "#st = :run AND (attribute_not_exists(stops) OR size(stops) < :max)"
    try:
        new = table.call(
            "update_item",
            **table.update(f"EXEC#{execution_id}", _META, expr, cond, values),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except _RejectedError as rej:
        if rej.item is None:
            raise ExecutionNotFoundError(execution_id) from None
        check_stop(_execution(rej.item))
        raise  # the condition failed for a reason check_stop does not know
    return _execution(new["Attributes"])
