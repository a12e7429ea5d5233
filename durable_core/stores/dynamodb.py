"""DynamoDB store: executions and journals in one table, fenced with conditional writes.

For Lambda without the durable execution service and for workers on many machines; same
semantics as :class:`~durable_core.stores.memory.MemoryStore` (contract in
:mod:`durable_core.stores.base`). ``docs/dynamodb-store.md`` documents the design; the code
is in four modules: this one (leases, checkpoints, reads),
:mod:`~durable_core.stores.dynamodb_items` (the items and their encoding),
:mod:`~durable_core.stores.dynamodb_table` (the table, its indexes, the API calls) and
:mod:`~durable_core.stores.dynamodb_events` (callbacks, stop requests, signals).

Every write under a lease is one TransactWriteItems conditional on ``fence = :f AND
lease_owner = :o`` at the execution item: a stale holder gets LeaseLostError and nothing is
written. One ``write_operations`` call is one transaction (at most 100 items, 4 MB); a
bigger call is refused whole. Nothing is ever pickled.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError as PydanticValidationError

from durable_core.errors import (
    CorruptRecordError,
    ExecutionNotFoundError,
    LeaseLostError,
    PayloadTooLargeError,
    StoreError,
)
from durable_core.records import (
    CallbackOutcome,
    Execution,
    ExecutionStatus,
    Lease,
    Operation,
    StopRequest,
)
from durable_core.stores.audit import AuditEntry, AuditPage, check_audit_cursor
from durable_core.stores.base import InvocationEnd
from durable_core.stores.dynamodb_events import _change_callback, _request_stop, _signal_update
from durable_core.stores.dynamodb_items import (
    _CB,
    _META,
    _OP,
    _RUN,
    DUE,
    ITEM_LIMIT,  # noqa: F401 - a public name of this module before the items moved
    Item,
    _exec_item,
    _execution,
    _n,
    _op_rec,
    _operation,
    _opt,
    _s,
    _us,
    _where,
)
from durable_core.stores.dynamodb_table import _new_client, _RejectedError, _Table
from durable_core.stores.search import ExecutionPage, ExecutionQuery, page_of, sort_key

_AUDIT = "AUDIT"
"""The partition of the audit log (no execution's ``PK``, which all start ``EXEC#``)."""
_log = structlog.get_logger("durable.store")
TRANSACTION_ITEMS = 100
TRANSACTION_BYTES = 4 * 1024 * 1024
_FENCED = "fence = :f AND lease_owner = :o"


class DynamoDBStore:
    """A :class:`~durable_core.stores.base.Store` on one DynamoDB table.

    ``client`` is a boto3 DynamoDB client; without one, a client is made for
    ``endpoint_url``/``region_name`` with botocore's standard retry mode (throttling and 5xx
    are retried). With ``ttl_after_finish``, finished executions, their operations and
    callback tokens get ``expires_at`` (enable TTL on that attribute; ``create_table`` does).
    """

    def __init__(
        self,
        table_name: str,
        *,
        client: Any | None = None,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        ttl_after_finish: timedelta | None = None,
    ) -> None:
        self.table_name = table_name
        self.ttl_after_finish = ttl_after_finish
        self._own_client = client is None
        if client is None:  # boto3 is imported only when a DynamoDBStore is made
            client = _new_client(endpoint_url, region_name)
        self._client: Any = client
        self._table = _Table(table_name, client)
        self._lock = threading.Lock()
        self._op_counts: dict[tuple[str, int], int] = {}  # (execution, fence) -> op_count

    # --- plumbing -------------------------------------------------------------------------

    def _held(self, lease: Lease) -> Item:
        """The execution item, if ``lease`` still holds it; LeaseLostError otherwise."""
        item = self._table.get(f"EXEC#{lease.execution_id}", _META)
        if item is None:
            raise ExecutionNotFoundError(lease.execution_id)
        if _opt(item, "fence") != str(lease.fence) or _opt(item, "lease_owner") != lease.owner:
            raise self._lost(lease, item)
        return item

    def _lost(self, lease: Lease, item: Item | None) -> LeaseLostError | ExecutionNotFoundError:
        if item is None:
            return ExecutionNotFoundError(lease.execution_id)
        return LeaseLostError(
            f"Lease on execution {lease.execution_id!r} (fence {lease.fence}) was taken over by "
            f"{_opt(item, 'lease_owner')!r} (fence {_opt(item, 'fence')}); this invocation "
            "stops writing."
        )

    # --- table ----------------------------------------------------------------------------

    def create_table(self, *, wait: bool = True) -> None:
        """Create the table and its two indexes (PAY_PER_REQUEST); a no-op if it exists.

        With ``ttl_after_finish`` set, also enables TTL on ``expires_at``.
        """
        self._table.create(ttl=self.ttl_after_finish is not None, wait=wait)

    # --- executions -----------------------------------------------------------------------

    def create_execution(self, execution: Execution) -> tuple[Execution, bool]:
        try:
            self._table.call(
                "put_item",
                TableName=self.table_name,
                Item=_exec_item(execution, 0, None),
                ConditionExpression="attribute_not_exists(PK)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _RejectedError as rej:
            existing = _execution(rej.item) if rej.item else None
            return existing or self.get_execution(execution.id), False
        return execution, True

    def get_execution(self, execution_id: str) -> Execution:
        item = self._table.get(f"EXEC#{execution_id}", _META)
        if item is None:
            raise ExecutionNotFoundError(execution_id)
        return _execution(item)

    def list_executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[Execution]:
        """Newest first. The index is eventually consistent on AWS; records are read fresh."""
        query: Item = {"IndexName": "created_index", "ScanIndexForward": False}
        query |= {"KeyConditionExpression": "list_pk = :l"}
        query["ExpressionAttributeValues"] = {":l": _s("EXEC")}
        if status is not None:
            query |= {"FilterExpression": "#st = :s", "ExpressionAttributeNames": {"#st": "status"}}
            query["ExpressionAttributeValues"][":s"] = _s(status.value)
        out: list[Execution] = []
        keys: list[Item] = []
        for key in self._table.query(**query):
            if len(out) >= limit:
                break
            keys.append({"PK": key["PK"], "SK": key["SK"]})
            if len(keys) == min(100, limit):
                out += self._batch_get(keys, status)
                keys = []
        if keys and len(out) < limit:
            out += self._batch_get(keys, status)
        return out[:limit]

    def search_executions(self, query: ExecutionQuery) -> ExecutionPage:
        """Newest first from ``created_index``; filters apply to the records read (so a
        rare match reads many items: DynamoDB has no secondary text search)."""
        low = _us(query.created_after) if query.created_after else None
        bounds = [_us(query.after[0]) if query.after else None]
        bounds.append(_us(query.created_before) - 1 if query.created_before else None)
        high = min((b for b in bounds if b is not None), default=None)
        values: Item = {":l": _s("EXEC")}
        key = "list_pk = :l"
        if low is not None and high is not None:
            key += " AND created_us BETWEEN :lo AND :hi"
            values |= {":lo": _n(low), ":hi": _n(high)}
        elif low is not None or high is not None:
            key += " AND created_us >= :lo" if low is not None else " AND created_us <= :hi"
            values |= {":lo": _n(low)} if low is not None else {":hi": _n(high or 0)}
        found: list[Execution] = []
        keys: list[Item] = []
        cutoff: int | None = None  # past the page: read on only to finish a tie of created_us
        for item in self._table.query(
            IndexName="created_index",
            ScanIndexForward=False,
            KeyConditionExpression=key,
            ExpressionAttributeValues=values,
        ):
            if cutoff is not None and int(item["created_us"]["N"]) < cutoff:
                break
            keys.append({"PK": item["PK"], "SK": item["SK"]})
            if len(keys) == 100:
                found += [e for e in self._batch_get(keys, query.status) if _fits(query, e)]
                keys = []
                if cutoff is None and len(found) > query.limit:
                    found.sort(key=sort_key, reverse=True)
                    cutoff = _us(found[query.limit].created_at)
        if keys:
            found += [e for e in self._batch_get(keys, query.status) if _fits(query, e)]
        found.sort(key=sort_key, reverse=True)
        return page_of(found[: query.limit + 1], query.limit)

    def append_audit(self, entry: AuditEntry) -> None:
        """Put ``entry`` in the ``AUDIT`` partition, keyed by time and id (newest last)."""
        sk = f"{_us(entry.at):020d}-{entry.id}"
        item = {"PK": _s(_AUDIT), "SK": _s(sk), "rec": _s(entry.model_dump_json())}
        self._table.call("put_item", TableName=self.table_name, Item=item)

    def list_audit(self, *, cursor: str | None = None, limit: int = 50) -> AuditPage:
        """The ``AUDIT`` partition, newest first; the cursor is the last sort key returned."""
        start = check_audit_cursor(cursor, r"\d{20}-[0-9a-f]{32}")
        query: Item = {"ScanIndexForward": False, "ConsistentRead": True, "Limit": limit}
        query |= {"KeyConditionExpression": "PK = :pk"}
        query["ExpressionAttributeValues"] = {":pk": _s(_AUDIT)}
        if start is not None:
            query["ExclusiveStartKey"] = {"PK": _s(_AUDIT), "SK": _s(start)}
        page = self._table.call("query", TableName=self.table_name, **query)
        try:
            items = [AuditEntry.model_validate_json(i["rec"]["S"]) for i in page.get("Items", [])]
        except (KeyError, PydanticValidationError) as e:
            msg = f"an audit item of {self.table_name} does not parse: {e}"
            raise CorruptRecordError(msg) from e
        last = page.get("LastEvaluatedKey")
        return AuditPage(items=items, next_cursor=last["SK"]["S"] if last and items else None)

    def _batch_get(self, keys: list[Item], status: ExecutionStatus | None) -> list[Execution]:
        found: dict[str, Execution] = {}
        request: Item = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
        while request:
            page = self._table.call("batch_get_item", RequestItems=request)
            for item in page.get("Responses", {}).get(self.table_name, []):
                try:
                    found[item["PK"]["S"]] = _execution(item)
                except CorruptRecordError as e:  # one damaged item must not hide the rest
                    _log.error("list_executions skips an unreadable execution", error=str(e))
            request = page.get("UnprocessedKeys") or {}
        ordered = (found.get(k["PK"]["S"]) for k in keys)  # keep the index's newest-first order
        return [e for e in ordered if e is not None and status in (None, e.status)]

    def load_operations(self, execution_id: str) -> list[Operation]:
        meta = False
        ops: list[tuple[int, Operation]] = []
        pk = {":pk": _s(f"EXEC#{execution_id}")}
        for item in self._table.query(
            KeyConditionExpression="PK = :pk", ExpressionAttributeValues=pk, ConsistentRead=True
        ):
            sk = item["SK"]["S"]
            if sk == _META:
                meta = True
            elif sk.startswith(_OP):
                seq = _opt(item, "seq")
                if seq is None or not seq.isdigit():
                    raise CorruptRecordError(f"operation item {_where(item)} has no valid seq")
                ops.append((int(seq), _operation(item)))
        if not meta:
            raise ExecutionNotFoundError(execution_id)
        ops.sort(key=lambda pair: pair[0])
        return [op for _, op in ops]

    # --- leases ---------------------------------------------------------------------------

    def _take(
        self, execution_id: str, owner: str, now: datetime, ttl: timedelta, due: bool
    ) -> Lease | None:
        """Conditionally take the lease (RUNNING, free or expired; due too if ``due``).

        A free lease is taken in one conditional update. An expired one that is still held
        (its holder died) is taken over in a second update conditional on that same holder
        and fence, which also counts the recovery (``recoveries``).
        """
        expires = now + ttl
        cond = "attribute_exists(PK) AND #st = :run AND attribute_not_exists(lease_owner)"
        values = {":o": _s(owner), ":e": _n(_us(expires)), ":one": _n(1)}
        values |= {":now": _n(_us(now)), ":run": _s(_RUN)}
        if due:  # the due index lags the table: re-check that it is still due
            cond += " AND due_pk = :due AND wake_us <= :now"
            values[":due"] = _s(DUE)
        expr = "SET lease_owner = :o, lease_exp_us = :e, fence = fence + :one, updated_us = :now"
        try:
            new = self._lease_update(execution_id, expr, cond, values)
        except _RejectedError as rej:
            old = rej.item
            if old is None and not due:
                raise ExecutionNotFoundError(execution_id) from None
            held_until = None if old is None else _opt(old, "lease_exp_us")
            if old is None or "lease_owner" not in old or int(held_until or 0) > _us(now):
                return None  # held by someone else, finished, or (claim) no longer due
            values |= {":dead": old["lease_owner"], ":df": old["fence"], ":zero": _n(0)}
            cond = cond.replace(
                "attribute_not_exists(lease_owner)",
                "lease_owner = :dead AND fence = :df AND lease_exp_us <= :now",
            )
            expr += ", recoveries = if_not_exists(recoveries, :zero) + :one"
            try:
                new = self._lease_update(execution_id, expr, cond, values)
            except _RejectedError:
                return None  # another worker took it over first, or it changed meanwhile
        fence = int(new["fence"]["N"])
        with self._lock:
            if len(self._op_counts) > 10_000:
                self._op_counts.clear()  # only a cache: a miss costs one read
            self._op_counts[(execution_id, fence)] = int(new["op_count"]["N"])
        seq = int(new["signal_seq"]["N"])
        return Lease(
            execution_id=execution_id, owner=owner, fence=fence, expires=expires, signal_seq=seq
        )

    def _lease_update(self, execution_id: str, expr: str, cond: str, values: Item) -> Item:
        new: Item = self._table.call(
            "update_item",
            **self._table.update(f"EXEC#{execution_id}", _META, expr, cond, values),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )["Attributes"]
        return new

    def acquire_lease(
        self, execution_id: str, owner: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        return self._take(execution_id, owner, now, ttl, due=False)

    def claim_due(self, owner: str, now: datetime, ttl: timedelta, limit: int) -> list[Lease]:
        leases: list[Lease] = []
        if limit <= 0:
            return leases
        for key in self._table.query(
            IndexName="due_index",
            KeyConditionExpression="due_pk = :due AND wake_us <= :now",
            FilterExpression="attribute_not_exists(lease_exp_us) OR lease_exp_us <= :now",
            ExpressionAttributeValues={":due": _s(DUE), ":now": _n(_us(now))},
            Limit=max(2 * limit, 25),
        ):
            # A competing claimer that got there first makes the conditional update fail.
            lease = self._take(key["PK"]["S"].removeprefix("EXEC#"), owner, now, ttl, due=True)
            if lease is not None:
                leases.append(lease)
                if len(leases) >= limit:
                    break
        return leases

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        expires = now + ttl
        values = {":f": _n(lease.fence), ":o": _s(lease.owner), ":e": _n(_us(expires))}
        pk = f"EXEC#{lease.execution_id}"
        try:
            self._table.call(
                "update_item",
                **self._table.update(pk, _META, "SET lease_exp_us = :e", _FENCED, values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _RejectedError as rej:
            raise self._lost(lease, rej.item) from None
        return lease.model_copy(update={"expires": expires})

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        eid = lease.execution_id
        latest = {op.id: op for op in operations}  # a transaction may touch an item once
        tokens = {op.callback_id: op.id for op in latest.values() if op.callback_id}
        if len(latest) + len(tokens) + 1 > TRANSACTION_ITEMS:
            raise StoreError(
                f"write_operations got {len(latest)} records ({len(tokens)} with callback "
                f"tokens) for execution {eid!r}: DynamoDBStore writes a checkpoint as one "
                f"transaction of at most {TRANSACTION_ITEMS} items (one per record, one more "
                "per callback token, one for the execution). Nothing was written."
            )
        recs = {op_id: _op_rec(eid, op) for op_id, op in latest.items()}
        total = sum(len(rec.encode()) for rec in recs.values())
        if total > TRANSACTION_BYTES:
            raise PayloadTooLargeError(
                f"checkpoint of execution {eid!r} is {total} bytes; a DynamoDB transaction "
                "holds at most 4 MB. Nothing was written.",
                operation=", ".join(op.name or op.id for op in latest.values()),
            )
        renew = lease.expires - now <= ttl / 2  # like MemoryStore: renew past half-life
        expires = now + ttl if renew else lease.expires
        for _ in range(5):
            with self._lock:
                count = self._op_counts.get((eid, lease.fence))
            if count is None:
                count = int(self._held(lease)["op_count"]["N"])
            values = {":f": _n(lease.fence), ":o": _s(lease.owner), ":c": _n(count)}
            values[":c2"] = _n(count + len(latest))
            expr = "SET op_count = :c2"
            if renew:
                expr += ", lease_exp_us = :e"
                values[":e"] = _n(_us(expires))
            cond = f"{_FENCED} AND op_count = :c"
            items: list[Item] = [
                {"Update": self._table.update(f"EXEC#{eid}", _META, expr, cond, values)}
            ]
            for seq, (op_id, rec) in enumerate(recs.items(), start=count + 1):
                expr = "SET rec = :r, seq = if_not_exists(seq, :s)"
                values = {":r": _s(rec), ":s": _n(seq)}
                items.append(
                    {"Update": self._table.update(f"EXEC#{eid}", _OP + op_id, expr, "", values)}
                )
            for token, op_id in tokens.items():
                item = {"PK": _s(f"CB#{token}"), "SK": _s(_CB), "eid": _s(eid), "oid": _s(op_id)}
                items.append({"Put": {"TableName": self.table_name, "Item": item}})
            try:
                self._table.transact(items)
            except _RejectedError as rej:
                if rej.reasons[:1] != ["ConditionalCheckFailed"]:
                    raise StoreError(f"checkpoint of {eid!r} cancelled: {rej.reasons}") from None
                with self._lock:  # the lease is lost or op_count was stale: re-read
                    self._op_counts.pop((eid, lease.fence), None)
                continue
            with self._lock:
                self._op_counts[(eid, lease.fence)] = count + len(latest)
            return lease.model_copy(update={"expires": expires}) if renew else lease
        raise StoreError(f"checkpoint of {eid!r} kept conflicting; nothing was written")

    def finish_invocation(self, lease: Lease, end: InvocationEnd, now: datetime) -> Execution:
        eid = lease.execution_id
        for _ in range(10):
            item = self._held(lease)
            ex = _execution(item)
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
                recovery_attempts=0,
                role=ex.role or end.role,
            )
            ttl = self.ttl_after_finish
            expires = int((now + ttl).timestamp()) if ttl and not running else None
            # A whole-item put is safe: every other writer changes fence or signal_seq.
            values = {":f": _n(lease.fence), ":o": _s(lease.owner), ":seq": _n(ex.signal_seq)}
            put = {
                "TableName": self.table_name,
                "Item": _exec_item(updated, int(item["op_count"]["N"]), expires),
                "ConditionExpression": f"{_FENCED} AND signal_seq = :seq",
                "ExpressionAttributeValues": values,
            }
            items: list[Item] = [{"Put": put}]
            if not running and ex.parent_execution_id not in (None, eid):
                signal = _signal_update(self._table, ex.parent_execution_id, now)
                items += [{"Update": signal}] if signal else []
            try:
                self._table.transact(items)
            except _RejectedError:
                continue  # re-read: the lease was lost, a signal arrived or the parent changed
            with self._lock:
                self._op_counts.pop((eid, lease.fence), None)
            if expires is not None:
                self._stamp_expiry(eid, expires)
            return updated
        raise StoreError(f"finishing the invocation of {eid!r} kept conflicting")

    def _stamp_expiry(self, execution_id: str, expires: int) -> None:
        """Give a finished execution's operations and callback tokens ``expires_at``."""
        for item in self._table.query(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :op)",
            ExpressionAttributeValues={":pk": _s(f"EXEC#{execution_id}"), ":op": _s(_OP)},
            ProjectionExpression="PK, SK, rec",
            ConsistentRead=True,
        ):
            keys = [(item["PK"]["S"], item["SK"]["S"])]
            with contextlib.suppress(KeyError, ValueError, AttributeError):
                token = json.loads(item["rec"]["S"]).get("callback_id")
                keys += [(f"CB#{token}", _CB)] if token else []
            for pk, sk in keys:
                values = {":x": _n(expires)}
                update = self._table.update(
                    pk, sk, "SET expires_at = :x", "attribute_exists(PK)", values
                )
                with contextlib.suppress(_RejectedError):
                    self._table.call("update_item", **update)

    def release_lease(self, lease: Lease) -> None:
        values = {":f": _n(lease.fence), ":o": _s(lease.owner)}
        expr = "REMOVE lease_owner, lease_exp_us"
        with contextlib.suppress(_RejectedError):  # already lost: nothing to give up
            pk = f"EXEC#{lease.execution_id}"
            self._table.call("update_item", **self._table.update(pk, _META, expr, _FENCED, values))
        with self._lock:
            self._op_counts.pop((lease.execution_id, lease.fence), None)

    # --- external events ------------------------------------------------------------------

    def complete_callback(
        self,
        callback_id: str,
        outcome: CallbackOutcome,
        now: datetime,
        *,
        privileged: bool = False,
    ) -> Operation:
        def done(op: Operation) -> Operation:
            changes = {"status": outcome.status, "result": outcome.result, "ended_at": now}
            return op.evolve(error=outcome.error, **changes)

        why = "a callback completes once"
        return _change_callback(self._table, callback_id, now, done, why, privileged=privileged)

    def heartbeat_callback(self, callback_id: str, now: datetime) -> Operation:
        why = "a heartbeat cannot revive it"
        return _change_callback(self._table, callback_id, now, lambda op: op.heartbeaten(now), why)

    def request_stop(self, execution_id: str, request: StopRequest, now: datetime) -> Execution:
        return _request_stop(self._table, execution_id, request, now)

    def close(self) -> None:
        """Close the client this store made (a client passed in stays open)."""
        if self._own_client:
            self._client.close()


def _fits(query: ExecutionQuery, ex: Execution) -> bool:
    return query.follows(ex) and query.matches(ex)
