"""DynamoDBStore against DynamoDB Local (never moto: leases and fencing need real atomicity)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    CorruptRecordError,
    ExecutionNotFoundError,
    ExecutionNotRunningError,
    LeaseLostError,
    PayloadTooLargeError,
    StoreError,
)
from durable_core.records import (
    CallbackOutcome,
    ErrorInfo,
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
    StopKind,
    StopRequest,
)
from durable_core.stores.base import InvocationEnd, Store
from durable_core.stores.dynamodb import DynamoDBStore

pytestmark = pytest.mark.aws

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)
OK = CallbackOutcome(status=OperationStatus.SUCCEEDED, result='"yes"')


def execution(eid: str = "ex-1", **kw: Any) -> Execution:
    fields: dict[str, Any] = {
        "id": eid,
        "function": "mod:fn",
        "input": '{"n": 1}',
        "created_at": T0,
        "updated_at": T0,
        "wake_at": T0,
    }
    fields.update(kw)
    return Execution(**fields)


def step(op_id: str, status: OperationStatus = OperationStatus.SUCCEEDED, **kw: Any) -> Operation:
    return Operation(id=op_id, type=OperationType.STEP, name=f"s{op_id}", status=status, **kw)


def callback(op_id: str, token: str) -> Operation:
    return Operation(
        id=op_id,
        type=OperationType.CALLBACK,
        name=f"cb{op_id}",
        status=OperationStatus.STARTED,
        callback_id=token,
        heartbeat_timeout_s=60,
    )


def leased(store: DynamoDBStore, eid: str = "ex-1", owner: str = "w1", **kw: Any) -> Any:
    store.create_execution(execution(eid, **kw))
    lease = store.acquire_lease(eid, owner, T0, TTL)
    assert lease is not None
    return lease


def raw(store: DynamoDBStore, pk: str, sk: str) -> dict[str, Any]:
    key = {"PK": {"S": pk}, "SK": {"S": sk}}
    item: dict[str, Any] = store._client.get_item(
        TableName=store.table_name, Key=key, ConsistentRead=True
    )["Item"]
    return item


def test_importing_durable_core_does_not_import_boto3() -> None:
    code = "import sys, durable_core.stores.dynamodb; assert 'boto3' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_is_a_store_and_create_table_is_idempotent(ddb_store: DynamoDBStore) -> None:
    assert isinstance(ddb_store, Store)
    ddb_store.create_table()  # exists already: no error


def test_create_is_idempotent_and_round_trips(ddb_store: DynamoDBStore) -> None:
    ex = execution(deadline=T0 + timedelta(days=3), version="v1", parent_execution_id="p")
    assert ddb_store.create_execution(ex) == (ex, True)
    again, created = ddb_store.create_execution(execution(input='{"other": 2}'))
    assert (again, created) == (ex, False)
    assert ddb_store.get_execution("ex-1") == ex


def test_unknown_ids(ddb_store: DynamoDBStore) -> None:
    with pytest.raises(ExecutionNotFoundError):
        ddb_store.get_execution("nope")
    with pytest.raises(ExecutionNotFoundError):
        ddb_store.load_operations("nope")
    with pytest.raises(ExecutionNotFoundError):
        ddb_store.acquire_lease("nope", "w", T0, TTL)
    request = StopRequest(kind=StopKind.CANCEL, reason="why", requested_at=T0)
    with pytest.raises(ExecutionNotFoundError):
        ddb_store.request_stop("nope", request, T0)
    with pytest.raises(CallbackNotFoundError):
        ddb_store.complete_callback("no-such-token", OK, T0)


def test_load_order_is_first_write_order_across_upserts_and_leases(
    ddb_store: DynamoDBStore,
) -> None:
    lease = leased(ddb_store)
    names = ["zeta", "alpha", "mid", "10", "9"]  # not sorted by id
    lease = ddb_store.write_operations(lease, [step(names[0]), step(names[1])], T0, TTL)
    lease = ddb_store.write_operations(lease, [step(names[2])], T0, TTL)
    update = step("alpha", attempt=3)
    lease = ddb_store.write_operations(lease, [step(names[3]), update], T0, TTL)
    ddb_store.finish_invocation(lease, InvocationEnd(status=ExecutionStatus.RUNNING), T0)
    lease = ddb_store.acquire_lease("ex-1", "w2", T0, TTL)  # a new fence, a cold cache
    ddb_store.write_operations(lease, [step(names[4]), step("zeta", attempt=2)], T0, TTL)
    ops = ddb_store.load_operations("ex-1")
    assert [o.id for o in ops] == names
    assert ops[0].attempt == 2
    assert ops[1].attempt == 3


def test_lease_takeover_fences_the_stale_holder_with_nothing_written(
    ddb_store: DynamoDBStore,
) -> None:
    stale = leased(ddb_store, owner="slow")
    stale = ddb_store.write_operations(stale, [step("1")], T0, TTL)
    assert ddb_store.acquire_lease("ex-1", "other", T0 + TTL / 2, TTL) is None  # still held
    fresh = ddb_store.acquire_lease("ex-1", "fast", T0 + 2 * TTL, TTL)
    assert fresh is not None
    assert fresh.fence == stale.fence + 1
    late = T0 + 2 * TTL
    with pytest.raises(LeaseLostError):
        ddb_store.write_operations(stale, [step("1", attempt=9), step("2")], late, TTL)
    with pytest.raises(LeaseLostError):
        ddb_store.renew_lease(stale, late, TTL)
    with pytest.raises(LeaseLostError):
        ddb_store.finish_invocation(stale, InvocationEnd(status=ExecutionStatus.SUCCEEDED), late)
    ddb_store.release_lease(stale)  # a no-op: the lease is someone else's now
    ex = ddb_store.get_execution("ex-1")
    assert (ex.status, ex.lease_owner, ex.fence) == (ExecutionStatus.RUNNING, "fast", fresh.fence)
    assert ddb_store.load_operations("ex-1") == [step("1")]
    assert ddb_store.get_execution("ex-1").fence == fresh.fence
    ddb_store.write_operations(fresh, [step("2")], late, TTL)
    assert [o.id for o in ddb_store.load_operations("ex-1")] == ["1", "2"]


def test_renew_and_release(ddb_store: DynamoDBStore) -> None:
    lease = leased(ddb_store)
    renewed = ddb_store.renew_lease(lease, T0 + TTL / 2, TTL)
    assert renewed.expires == T0 + TTL / 2 + TTL
    assert ddb_store.get_execution("ex-1").lease_expires == renewed.expires
    ddb_store.release_lease(renewed)
    assert ddb_store.get_execution("ex-1").lease_owner is None
    with pytest.raises(LeaseLostError):
        ddb_store.write_operations(renewed, [step("1")], T0, TTL)
    assert ddb_store.acquire_lease("ex-1", "w2", T0, TTL) is not None


def test_claim_due_takes_only_due_free_running_in_wake_order(ddb_store: DynamoDBStore) -> None:
    for i, minutes in enumerate([5, 1, 3, -1, 2]):
        ddb_store.create_execution(execution(f"e{i}", wake_at=T0 + timedelta(minutes=minutes)))
    ddb_store.create_execution(execution("waiting", wake_at=None))
    held = ddb_store.acquire_lease("e4", "other", T0, timedelta(hours=1))
    assert held is not None
    done = ddb_store.acquire_lease("e3", "x", T0, TTL)
    assert done is not None
    ddb_store.finish_invocation(done, InvocationEnd(status=ExecutionStatus.SUCCEEDED), T0)
    now = T0 + timedelta(minutes=4)
    first = ddb_store.claim_due("me", now, TTL, 1)
    assert [lease.execution_id for lease in first] == ["e1"]
    rest = ddb_store.claim_due("me", now, TTL, 10)
    assert [lease.execution_id for lease in rest] == ["e2"]
    assert ddb_store.claim_due("me", now, TTL, 10) == []
    assert ddb_store.claim_due("me", now, TTL, 0) == []


def test_claim_due_never_gives_one_execution_to_two_owners(
    new_ddb_store: Callable[..., DynamoDBStore], ddb_client: Callable[[], Any]
) -> None:
    setup = new_ddb_store()
    ids = [f"race-{i:03d}" for i in range(100)]
    for i, eid in enumerate(ids):
        setup.create_execution(execution(eid, wake_at=T0 + timedelta(milliseconds=i)))
    claimed: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(owner: str) -> None:
        store = DynamoDBStore(setup.table_name, client=ddb_client())
        try:
            start.wait()
            while batch := store.claim_due(owner, T0 + timedelta(seconds=1), TTL, 7):
                claimed[owner] += [lease.execution_id for lease in batch]
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(owner,)) for owner in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    counts = Counter(claimed["a"] + claimed["b"])
    assert sorted(counts) == ids
    assert set(counts.values()) == {1}
    for eid in ids:  # each was leased exactly once: fence 1, by the owner that got it
        ex = setup.get_execution(eid)
        assert ex.fence == 1
        assert eid in claimed[str(ex.lease_owner)]


def test_complete_callback_once_twice_and_unknown(ddb_store: DynamoDBStore) -> None:
    lease = leased(ddb_store)
    lease = ddb_store.write_operations(lease, [callback("c", "tok-1")], T0, TTL)
    end = InvocationEnd(status=ExecutionStatus.RUNNING, waiting_for="callback cbc")
    ddb_store.finish_invocation(lease, end, T0)
    assert ddb_store.get_execution("ex-1").wake_at is None
    later = T0 + timedelta(minutes=1)
    done = ddb_store.complete_callback("tok-1", OK, later)
    assert (done.status, done.result, done.ended_at) == (OperationStatus.SUCCEEDED, '"yes"', later)
    ex = ddb_store.get_execution("ex-1")
    assert (ex.signal_seq, ex.wake_at) == (1, later)
    failed = CallbackOutcome(status=OperationStatus.FAILED, error=ErrorInfo(type="E", message="m"))
    with pytest.raises(CallbackAlreadyCompletedError):
        ddb_store.complete_callback("tok-1", failed, later + TTL)
    with pytest.raises(CallbackAlreadyCompletedError):
        ddb_store.heartbeat_callback("tok-1", later + TTL)
    assert ddb_store.load_operations("ex-1") == [done]
    assert ddb_store.get_execution("ex-1") == ex  # nothing changed
    with pytest.raises(CallbackNotFoundError):
        ddb_store.complete_callback("tok-2", OK, later)


def test_concurrent_completions_of_one_callback_succeed_exactly_once(
    new_ddb_store: Callable[..., DynamoDBStore], ddb_client: Callable[[], Any]
) -> None:
    store = new_ddb_store()
    lease = leased(store)
    store.write_operations(lease, [callback("c", "tok")], T0, TTL)
    results: list[str] = []
    start = threading.Barrier(6)

    def complete(i: int) -> None:
        racer = DynamoDBStore(store.table_name, client=ddb_client())
        start.wait()
        outcome = CallbackOutcome(status=OperationStatus.SUCCEEDED, result=str(i))
        try:
            racer.complete_callback("tok", outcome, T0)
            results.append(str(i))
        except CallbackAlreadyCompletedError:
            results.append("already")

    threads = [threading.Thread(target=complete, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [r for r in results if r != "already"]
    assert len(results) == 6
    assert len(winners) == 1
    assert store.load_operations("ex-1")[0].result == winners[0]
    assert store.get_execution("ex-1").signal_seq == 1


def test_heartbeat_moves_the_deadline_and_wakes(ddb_store: DynamoDBStore) -> None:
    lease = leased(ddb_store)
    ddb_store.write_operations(lease, [callback("c", "tok")], T0, TTL)
    beat = ddb_store.heartbeat_callback("tok", T0 + TTL)
    assert beat.heartbeat_deadline == T0 + TTL + timedelta(seconds=60)
    assert ddb_store.get_execution("ex-1").signal_seq == 1


def test_signal_during_an_invocation_keeps_the_execution_due(ddb_store: DynamoDBStore) -> None:
    lease = leased(ddb_store)
    lease = ddb_store.write_operations(lease, [callback("c", "tok")], T0, TTL)
    ddb_store.complete_callback("tok", OK, T0 + timedelta(seconds=1))  # arrives mid-run
    end = InvocationEnd(status=ExecutionStatus.RUNNING, wake_at=T0 + timedelta(days=1))
    finished = ddb_store.finish_invocation(lease, end, T0 + timedelta(seconds=2))
    assert finished.wake_at == T0 + timedelta(seconds=2)
    assert ddb_store.get_execution("ex-1") == finished
    claimed = ddb_store.claim_due("w2", T0 + timedelta(seconds=3), TTL, 5)
    assert [lease.execution_id for lease in claimed] == ["ex-1"]


class InterposingClient:
    """Forwards to a boto3 client, running ``hook`` once just before the first transaction."""

    def __init__(self, client: Any, hook: Any) -> None:
        self.client = client
        self.hook = hook

    def transact_write_items(self, **kwargs: Any) -> Any:
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return self.client.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_signal_racing_the_finish_is_not_lost(ddb_store: DynamoDBStore) -> None:
    lease = leased(ddb_store)
    lease = ddb_store.write_operations(lease, [callback("c", "tok")], T0, TTL)
    # The callback lands after finish_invocation read the execution, before it writes.
    racing = InterposingClient(
        ddb_store._client, lambda: ddb_store.complete_callback("tok", OK, T0)
    )
    store = DynamoDBStore(ddb_store.table_name, client=racing)
    end = InvocationEnd(status=ExecutionStatus.RUNNING, wake_at=None, waiting_for="cb")
    finished = store.finish_invocation(lease, end, T0 + timedelta(seconds=5))
    assert finished.wake_at == T0 + timedelta(seconds=5)
    assert ddb_store.get_execution("ex-1") == finished
    assert finished.signal_seq == 1


def test_takeover_racing_a_checkpoint_writes_nothing(ddb_store: DynamoDBStore) -> None:
    stale = leased(ddb_store, owner="slow", wake_at=T0)
    later = T0 + 2 * TTL
    racing = InterposingClient(
        ddb_store._client, lambda: ddb_store.acquire_lease("ex-1", "fast", later, TTL)
    )
    store = DynamoDBStore(ddb_store.table_name, client=racing)
    with pytest.raises(LeaseLostError):
        store.write_operations(stale, [step("1"), callback("2", "tok")], later, TTL)
    assert ddb_store.load_operations("ex-1") == []
    with pytest.raises(CallbackNotFoundError):
        ddb_store.complete_callback("tok", OK, later)


def test_cancel_request_wakes_and_refuses_finished(ddb_store: DynamoDBStore) -> None:
    ddb_store.create_execution(execution(wake_at=None))
    request = StopRequest(kind=StopKind.CANCEL, reason="operator", requested_at=T0)
    ex = ddb_store.request_stop("ex-1", request, T0)
    assert (ex.stop_requests, ex.signal_seq, ex.wake_at) == ((request,), 1, T0)
    lease = ddb_store.acquire_lease("ex-1", "w", T0, TTL)
    assert lease is not None
    ddb_store.finish_invocation(lease, InvocationEnd(status=ExecutionStatus.CANCELLED), T0)
    with pytest.raises(ExecutionNotRunningError):
        ddb_store.request_stop("ex-1", request, T0)


def test_terminal_finish_wakes_the_parent_atomically(ddb_store: DynamoDBStore) -> None:
    ddb_store.create_execution(execution("parent", wake_at=None))
    child = leased(ddb_store, "child", parent_execution_id="parent")
    end = InvocationEnd(status=ExecutionStatus.SUCCEEDED, result="42")
    done = ddb_store.finish_invocation(child, end, T0 + TTL)
    assert (done.status, done.result, done.wake_at, done.lease_owner) == (
        ExecutionStatus.SUCCEEDED,
        "42",
        None,
        None,
    )
    parent = ddb_store.get_execution("parent")
    assert (parent.signal_seq, parent.wake_at) == (1, T0 + TTL)
    claimed = ddb_store.claim_due("w", T0 + TTL, TTL, 5)
    assert [lease.execution_id for lease in claimed] == ["parent"]
    # A finished parent is left alone (and does not block the child's finish).
    ddb_store.finish_invocation(claimed[0], InvocationEnd(status=ExecutionStatus.FAILED), T0)
    orphan = leased(ddb_store, "child2", parent_execution_id="parent")
    ddb_store.finish_invocation(orphan, InvocationEnd(status=ExecutionStatus.SUCCEEDED), T0)
    assert ddb_store.get_execution("parent").signal_seq == 1


def test_list_executions_newest_first_by_status(ddb_store: DynamoDBStore) -> None:
    for i in range(5):
        ddb_store.create_execution(execution(f"e{i}", created_at=T0 + timedelta(minutes=i)))
    lease = ddb_store.acquire_lease("e2", "w", T0, TTL)
    assert lease is not None
    ddb_store.finish_invocation(lease, InvocationEnd(status=ExecutionStatus.SUCCEEDED), T0)
    assert [e.id for e in ddb_store.list_executions()] == ["e4", "e3", "e2", "e1", "e0"]
    assert [e.id for e in ddb_store.list_executions(limit=2)] == ["e4", "e3"]
    done = ddb_store.list_executions(status=ExecutionStatus.SUCCEEDED)
    assert [e.id for e in done] == ["e2"]
    running = ddb_store.list_executions(status=ExecutionStatus.RUNNING, limit=3)
    assert [e.id for e in running] == ["e4", "e3", "e1"]


class CountingClient:
    """Forwards to a boto3 client, counting Query pages that had more to come."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.continued = 0

    def query(self, **kwargs: Any) -> Any:
        page = self.client.query(**kwargs)
        self.continued += "LastEvaluatedKey" in page
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_paging_over_more_than_one_megabyte_of_operations(ddb_store: DynamoDBStore) -> None:
    counting = CountingClient(ddb_store._client)
    store = DynamoDBStore(ddb_store.table_name, client=counting)
    lease = leased(store)
    blob = '"' + "x" * 100_000 + '"'
    ids = [f"op-{(i * 7) % 24:02d}" for i in range(24)]  # 2.4 MB, ids out of key order
    for chunk in range(0, 24, 6):
        ops = [step(op_id, result=blob) for op_id in ids[chunk : chunk + 6]]
        lease = store.write_operations(lease, ops, T0, TTL)
    loaded = store.load_operations("ex-1")
    assert [o.id for o in loaded] == ids
    assert all(o.result == blob for o in loaded)
    assert counting.continued >= 2  # really followed LastEvaluatedKey


def test_ttl_attribute_on_finish(new_ddb_store: Callable[..., DynamoDBStore]) -> None:
    store = new_ddb_store(ttl_after_finish=timedelta(days=7))
    ttl = store._client.describe_time_to_live(TableName=store.table_name)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    lease = leased(store)
    lease = store.write_operations(lease, [step("1"), callback("2", "tok")], T0, TTL)
    mid = store.finish_invocation(lease, InvocationEnd(status=ExecutionStatus.RUNNING), T0)
    assert "expires_at" not in raw(store, "EXEC#ex-1", "#META")
    assert mid.wake_at is None
    lease = store.acquire_lease("ex-1", "w", T0, TTL)
    store.finish_invocation(lease, InvocationEnd(status=ExecutionStatus.SUCCEEDED), T0)
    expected = str(int((T0 + timedelta(days=7)).timestamp()))
    for pk, sk in [("EXEC#ex-1", "#META"), ("EXEC#ex-1", "OP#1"), ("EXEC#ex-1", "OP#2")]:
        assert raw(store, pk, sk)["expires_at"] == {"N": expected}
    assert raw(store, "CB#tok", "#CB")["expires_at"] == {"N": expected}


def test_oversized_records_are_refused_whole(ddb_store: DynamoDBStore) -> None:
    lease = leased(ddb_store)
    big = step("big", result='"' + "x" * 410_000 + '"')
    with pytest.raises(PayloadTooLargeError, match="sbig") as info:
        ddb_store.write_operations(lease, [step("small"), big], T0, TTL)
    assert info.value.operation == "sbig"
    too_many = [step(str(i)) for i in range(99)] + [callback("cb", "tok")]  # 101 items
    with pytest.raises(StoreError, match="at most 100 items"):
        ddb_store.write_operations(lease, too_many, T0, TTL)
    assert ddb_store.load_operations("ex-1") == []
    ddb_store.write_operations(lease, too_many[:99], T0, TTL)  # 99 + the execution fits
    assert len(ddb_store.load_operations("ex-1")) == 99
    with pytest.raises(PayloadTooLargeError, match="ex-2"):
        ddb_store.create_execution(execution("ex-2", input='"' + "y" * 410_000 + '"'))


def test_corrupt_items_raise_naming_the_item(ddb_store: DynamoDBStore) -> None:
    lease = leased(ddb_store)
    ddb_store.write_operations(lease, [step("1")], T0, TTL)
    client, table = ddb_store._client, ddb_store.table_name
    key = {"PK": {"S": "EXEC#ex-1"}, "SK": {"S": "OP#1"}}
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET rec = :r",
        ExpressionAttributeValues={":r": {"S": '{"id": "1", "type": "BOGUS"}'}},
    )
    with pytest.raises(CorruptRecordError, match="OP#1"):
        ddb_store.load_operations("ex-1")
    key["SK"] = {"S": "#META"}
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET rec = :r",
        ExpressionAttributeValues={":r": {"S": "not json"}},
    )
    with pytest.raises(CorruptRecordError, match="EXEC#ex-1"):
        ddb_store.get_execution("ex-1")
    # A listing skips the damaged execution (naming it in the log) and shows the others.
    ddb_store.create_execution(execution("ex-2"))
    with capture_logs() as logs:
        assert [e.id for e in ddb_store.list_executions()] == ["ex-2"]
    assert any("EXEC#ex-1" in str(e.get("error")) for e in logs)


def test_aws_errors_surface_as_store_error_with_the_code(ddb_client: Callable[[], Any]) -> None:
    store = DynamoDBStore("missing-table", client=ddb_client())
    with pytest.raises(StoreError, match="ResourceNotFoundException"):
        store.get_execution("x")


def test_constructor_builds_its_own_client(
    ddb_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    store = DynamoDBStore("own-client", endpoint_url=ddb_endpoint, region_name="us-east-1")
    assert store._client.meta.config.retries["mode"] == "standard"
    store.create_table()
    store.create_execution(execution())
    assert store.get_execution("ex-1").id == "ex-1"
    store._client.delete_table(TableName="own-client")
    store.close()


class ManualClock:
    """A clock the test moves by hand (the runtime never reads the wall clock)."""

    def __init__(self) -> None:
        self.now_ = T0

    def now(self) -> datetime:
        return self.now_

    def sleep(self, seconds: float) -> None:
        self.now_ += timedelta(seconds=seconds)


def test_runtime_end_to_end_on_dynamodb(ddb_store: DynamoDBStore) -> None:
    from durable_core import DurableContext, Runtime, durable

    sent: list[str] = []

    @durable
    def order(ctx: DurableContext, event: dict[str, int]) -> dict[str, Any]:
        reserved = ctx.step("reserve", lambda sc: event["n"] * 2)
        approval = ctx.create_callback("approve", timeout=timedelta(hours=1))
        ctx.step("send", lambda sc: sent.append(approval.token))
        approved = approval.result()
        ctx.wait("cool-off", timedelta(days=2))
        return {"reserved": reserved, "approved": approved}

    clock = ManualClock()
    runtime = Runtime(ddb_store, functions=[order], clock=clock, worker_id="w1")
    ex = runtime.run(order, {"n": 21}, execution_id="order-1")
    assert ex.status is ExecutionStatus.RUNNING
    assert ex.wake_at == T0 + timedelta(hours=1)  # the callback's timeout
    runtime.send_callback_success(sent[-1], True)
    assert runtime.tick() == 1
    clock.sleep(2 * 86_400)
    assert runtime.tick() == 1
    assert runtime.result("order-1") == {"reserved": 42, "approved": True}
    names = [op.name for op in runtime.operations("order-1")]
    assert names == ["reserve", "approve", "send", "cool-off"]
    assert sent == [sent[0]]  # the step ran once, across three invocations


@pytest.mark.parametrize("seed", [20301, 7, 1234])
def test_same_answers_as_memory_store_on_a_random_history(
    ddb_store: DynamoDBStore, seed: int
) -> None:
    """Differential check: a seeded random history gives MemoryStore's answers, call by call."""
    import random

    from durable_core.stores.memory import MemoryStore

    rng = random.Random(seed)
    stores: list[Any] = [MemoryStore(), ddb_store]
    leases: list[list[Any]] = [[], []]  # leases[i] is store i's copy of the same lease
    tokens: list[str] = []
    clock = T0
    ids = [f"x{i}" for i in range(6)]

    def both(method: str, *args: Any, lease_at: int | None = None) -> list[Any]:
        out = []
        for i, store in enumerate(stores):
            call_args = list(args)
            if lease_at is not None:
                call_args[lease_at] = leases[i][call_args[lease_at]]
            try:
                out.append(getattr(store, method)(*call_args))
            except Exception as exc:  # compare the error type only
                out.append(type(exc).__name__)
        assert out[0] == out[1], (method, args, out)
        return out

    for n in range(250):
        clock += timedelta(seconds=rng.choice([0, 1, 10, 40]))
        action = rng.choice(
            ["create", "acquire", "claim", "write", "write", "finish", "callback", "cancel"]
        )
        if action == "create":
            eid = rng.choice(ids)
            parent = rng.choice([None, *ids])
            created = T0 + timedelta(seconds=ids.index(eid))  # ties in list order are open
            ex = execution(eid, parent_execution_id=parent, wake_at=clock, created_at=created)
            both("create_execution", ex)
        elif action == "acquire":
            got = both("acquire_lease", rng.choice(ids), f"w{n % 3}", clock, TTL)
            if not isinstance(got[0], str) and got[0] is not None:
                leases[0].append(got[0])
                leases[1].append(got[1])
        elif action == "claim":
            got = both("claim_due", f"w{n % 3}", clock, TTL, rng.randint(1, 3))
            leases[0] += got[0]
            leases[1] += got[1]
        elif action in ("write", "finish") and leases[0]:
            k = len(leases[0]) - 1 if rng.random() < 0.7 else rng.randrange(len(leases[0]))
            if action == "write":
                ops = [step(f"s{rng.randint(0, 5)}", attempt=rng.randint(0, 3))]
                if rng.random() < 0.3:
                    tokens.append(f"tok-{n:03d}-{'x' * 20}")
                    ops.append(callback(f"c{n}", tokens[-1]))
                got = both("write_operations", k, ops, clock, TTL, lease_at=0)
                if not isinstance(got[0], str):
                    leases[0][k], leases[1][k] = got
            else:
                status = rng.choice([ExecutionStatus.RUNNING] * 4 + list(ExecutionStatus))
                wake = rng.choice([None, clock + timedelta(seconds=30)])
                end = InvocationEnd(status=status, wake_at=wake, result="1")
                both("finish_invocation", k, end, clock, lease_at=0)
        elif action == "callback" and tokens:
            outcome = rng.choice([OK, None])
            if outcome is None:
                both("heartbeat_callback", rng.choice(tokens), clock)
            else:
                both("complete_callback", rng.choice(tokens), outcome, clock)
        elif action == "cancel":
            both(
                "request_stop",
                rng.choice(ids),
                StopRequest(kind=StopKind.CANCEL, reason="stop", requested_at=clock),
                clock,
            )
    for eid in ids:
        both("get_execution", eid)
        both("load_operations", eid)
    both("list_executions")


class ConflictingClient:
    """Forwards to a boto3 client; the first ``n`` transactions fail as DynamoDB does when
    another transaction holds one of the items (TransactionConflict)."""

    def __init__(self, client: Any, n: int) -> None:
        self.client = client
        self.n = n

    def transact_write_items(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        if self.n > 0:
            self.n -= 1
            reasons = [{"Code": "TransactionConflict"} for _ in kwargs["TransactItems"]]
            error = {"Code": "TransactionCanceledException", "Message": "conflict"}
            response = {"Error": error, "CancellationReasons": reasons}
            raise ClientError(response, "TransactWriteItems")
        return self.client.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_transaction_conflicts_are_retried_then_surface(ddb_store: DynamoDBStore) -> None:
    lease = leased(ddb_store)
    flaky = DynamoDBStore(ddb_store.table_name, client=ConflictingClient(ddb_store._client, 3))
    lease = flaky.write_operations(lease, [step("1")], T0, TTL)
    assert ddb_store.load_operations("ex-1") == [step("1")]
    stuck = DynamoDBStore(ddb_store.table_name, client=ConflictingClient(ddb_store._client, 99))
    with pytest.raises(StoreError, match="TransactionConflict"):
        stuck.write_operations(lease, [step("2")], T0, TTL)
    assert ddb_store.load_operations("ex-1") == [step("1")]
