"""The store contract: every backend must pass these (see tests/stores/conftest.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    ExecutionNotFoundError,
    ExecutionNotRunningError,
    LeaseLostError,
)
from durable_core.journal import (
    CallbackOutcome,
    ErrorInfo,
    Execution,
    ExecutionStatus,
    Operation,
    OperationStatus,
    OperationType,
)
from durable_core.stores.base import InvocationEnd, Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TTL = timedelta(seconds=30)


def execution(
    eid: str, *, at: datetime = T0, wake: datetime | None = T0, **kw: object
) -> Execution:
    return Execution(
        id=eid, function="m:f", input="{}", created_at=at, updated_at=at, wake_at=wake, **kw
    )


def step(
    op_id: str, status: OperationStatus = OperationStatus.SUCCEEDED, **kw: object
) -> Operation:
    return Operation(id=op_id, type=OperationType.STEP, name=op_id, status=status, **kw)


def callback(op_id: str, token: str, **kw: object) -> Operation:
    return Operation(
        id=op_id,
        type=OperationType.CALLBACK,
        name=op_id,
        status=OperationStatus.STARTED,
        callback_id=token,
        **kw,
    )


def leased(store: Store, eid: str, owner: str = "w1", now: datetime = T0):  # type: ignore[no-untyped-def]
    store.create_execution(execution(eid))
    lease = store.acquire_lease(eid, owner, now, TTL)
    assert lease is not None
    return lease


def test_create_is_idempotent_by_id(store: Store) -> None:
    first, created = store.create_execution(execution("e1"))
    again, created_again = store.create_execution(execution("e1", at=T0 + timedelta(days=1)))
    assert created and not created_again
    assert again == first
    assert store.get_execution("e1").created_at == T0


def test_unknown_execution(store: Store) -> None:
    with pytest.raises(ExecutionNotFoundError, match="nope"):
        store.get_execution("nope")
    with pytest.raises(ExecutionNotFoundError):
        store.load_operations("nope")
    with pytest.raises(ExecutionNotFoundError):
        store.request_cancel("nope", "r", T0)


def test_list_newest_first_with_status_filter(store: Store) -> None:
    for i in range(3):
        store.create_execution(execution(f"e{i}", at=T0 + timedelta(minutes=i)))
    lease = store.acquire_lease("e1", "w", T0, TTL)
    assert lease is not None
    store.finish_invocation(lease, InvocationEnd(status=ExecutionStatus.SUCCEEDED, result="1"), T0)
    assert [e.id for e in store.list_executions()] == ["e2", "e1", "e0"]
    assert [e.id for e in store.list_executions(status=ExecutionStatus.RUNNING)] == ["e2", "e0"]
    assert [e.id for e in store.list_executions(limit=1)] == ["e2"]


def test_load_order_is_first_write_order_even_after_upserts(store: Store) -> None:
    lease = leased(store, "e1")
    lease = store.write_operations(lease, [step("b", OperationStatus.PENDING)], T0, TTL)
    lease = store.write_operations(lease, [step("a"), step("c")], T0, TTL)
    lease = store.write_operations(lease, [step("b", attempt=2)], T0, TTL)
    ops = store.load_operations("e1")
    assert [o.id for o in ops] == ["b", "a", "c"]
    assert ops[0].status is OperationStatus.SUCCEEDED and ops[0].attempt == 2


def test_datetimes_round_trip_timezone_aware(store: Store) -> None:
    when = datetime(2026, 5, 17, 8, 30, 15, 123456, tzinfo=UTC)
    lease = leased(store, "e1")
    store.write_operations(lease, [step("a", started_at=when, ended_at=when)], T0, TTL)
    op = store.load_operations("e1")[0]
    assert op.started_at == when and op.started_at.tzinfo is not None
    assert store.get_execution("e1").created_at.tzinfo is not None


def test_lease_excludes_others_until_expiry_and_takeover_fences(store: Store) -> None:
    first = leased(store, "e1", "w1")
    assert store.acquire_lease("e1", "w2", T0 + timedelta(seconds=5), TTL) is None
    later = T0 + TTL + timedelta(seconds=1)
    second = store.acquire_lease("e1", "w2", later, TTL)
    assert second is not None and second.fence == first.fence + 1
    with pytest.raises(LeaseLostError):
        store.write_operations(first, [step("stale")], later, TTL)
    with pytest.raises(LeaseLostError):
        store.finish_invocation(first, InvocationEnd(status=ExecutionStatus.SUCCEEDED), later)
    with pytest.raises(LeaseLostError):
        store.renew_lease(first, later, TTL)
    assert store.load_operations("e1") == []
    ex = store.get_execution("e1")
    assert ex.status is ExecutionStatus.RUNNING and ex.lease_owner == "w2"
    store.write_operations(second, [step("fresh")], later, TTL)
    assert [o.id for o in store.load_operations("e1")] == ["fresh"]


def test_renew_extends_lease(store: Store) -> None:
    lease = leased(store, "e1")
    renewed = store.renew_lease(lease, T0 + timedelta(seconds=20), TTL)
    assert renewed.expires == T0 + timedelta(seconds=50)
    assert store.acquire_lease("e1", "w2", T0 + timedelta(seconds=40), TTL) is None


def test_finished_execution_cannot_be_leased(store: Store) -> None:
    lease = leased(store, "e1")
    store.finish_invocation(
        lease,
        InvocationEnd(status=ExecutionStatus.FAILED, error=ErrorInfo(type="X", message="m")),
        T0,
    )
    assert store.acquire_lease("e1", "w", T0 + timedelta(hours=1), TTL) is None
    ex = store.get_execution("e1")
    assert ex.status is ExecutionStatus.FAILED and ex.error is not None and ex.error.type == "X"
    assert ex.lease_owner is None


def test_claim_due_returns_only_due_free_running(store: Store) -> None:
    store.create_execution(execution("due"))
    store.create_execution(execution("later", wake=T0 + timedelta(hours=1)))
    store.create_execution(execution("event-only", wake=None))
    held = leased(store, "held")
    assert held.fence == 1
    done = leased(store, "done")
    store.finish_invocation(done, InvocationEnd(status=ExecutionStatus.SUCCEEDED), T0)
    leases = store.claim_due("w9", T0, TTL, 10)
    assert [lease.execution_id for lease in leases] == ["due"]
    # an expired lease (dead worker) is claimable again
    again = store.claim_due("w9", T0 + TTL + timedelta(seconds=1), TTL, 10)
    assert {lease.execution_id for lease in again} == {"due", "held"}


def test_claim_due_never_gives_one_execution_to_two_owners(store_factory) -> None:  # type: ignore[no-untyped-def]
    setup = store_factory()
    for i in range(60):
        setup.create_execution(execution(f"e{i:02}"))
    handles = [store_factory(), store_factory()]
    claimed: dict[str, list[str]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def claim(owner: str, handle: Store) -> None:
        barrier.wait()
        while batch := handle.claim_due(owner, T0, TTL, 5):
            claimed[owner].extend(lease.execution_id for lease in batch)

    threads = [
        threading.Thread(target=claim, args=(o, h)) for o, h in zip("ab", handles, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    everything = claimed["a"] + claimed["b"]
    assert sorted(everything) == [f"e{i:02}" for i in range(60)]


def test_finish_keeps_execution_due_when_signalled_meanwhile(store: Store) -> None:
    lease = leased(store, "e1")
    store.write_operations(lease, [callback("cb", "tok-" + "x" * 40)], T0, TTL)
    store.complete_callback(
        "tok-" + "x" * 40, CallbackOutcome(status=OperationStatus.SUCCEEDED, result="1"), T0
    )
    end = InvocationEnd(status=ExecutionStatus.RUNNING, wake_at=None, waiting_for="callback")
    ex = store.finish_invocation(lease, end, T0 + timedelta(seconds=1))
    assert ex.wake_at == T0 + timedelta(seconds=1)
    assert [
        lease.execution_id for lease in store.claim_due("w2", T0 + timedelta(seconds=2), TTL, 5)
    ] == ["e1"]


def test_finish_without_signal_sleeps_until_wake_at(store: Store) -> None:
    lease = leased(store, "e1")
    end = InvocationEnd(
        status=ExecutionStatus.RUNNING, wake_at=T0 + timedelta(days=3), waiting_for="timer"
    )
    ex = store.finish_invocation(lease, end, T0)
    assert ex.wake_at == T0 + timedelta(days=3) and ex.waiting_for == "timer"
    assert store.claim_due("w", T0 + timedelta(days=2), TTL, 5) == []


def test_terminal_finish_wakes_parent(store: Store) -> None:
    parent = leased(store, "parent")
    store.finish_invocation(parent, InvocationEnd(status=ExecutionStatus.RUNNING, wake_at=None), T0)
    store.create_execution(execution("child", parent_execution_id="parent"))
    child = store.acquire_lease("child", "w", T0, TTL)
    assert child is not None
    later = T0 + timedelta(minutes=5)
    store.finish_invocation(
        child, InvocationEnd(status=ExecutionStatus.SUCCEEDED, result="2"), later
    )
    ex = store.get_execution("parent")
    assert ex.wake_at == later and ex.signal_seq == 1


def test_callback_completes_once(store: Store) -> None:
    token = "t" * 43
    lease = leased(store, "e1")
    store.write_operations(lease, [callback("cb", token)], T0, TTL)
    done = store.complete_callback(
        token, CallbackOutcome(status=OperationStatus.SUCCEEDED, result='{"a":1}'), T0
    )
    assert done.status is OperationStatus.SUCCEEDED and done.result == '{"a":1}'
    with pytest.raises(CallbackAlreadyCompletedError, match="Nothing was changed"):
        store.complete_callback(
            token,
            CallbackOutcome(
                status=OperationStatus.FAILED, error=ErrorInfo(type="X", message="late")
            ),
            T0,
        )
    with pytest.raises(CallbackAlreadyCompletedError):
        store.heartbeat_callback(token, T0)
    (op,) = store.load_operations("e1")
    assert op.status is OperationStatus.SUCCEEDED and op.result == '{"a":1}' and op.error is None


def test_unknown_token(store: Store) -> None:
    leased(store, "e1")
    with pytest.raises(CallbackNotFoundError):
        store.complete_callback("forged" * 7, CallbackOutcome(status=OperationStatus.SUCCEEDED), T0)
    with pytest.raises(CallbackNotFoundError):
        store.heartbeat_callback("forged" * 7, T0)


def test_heartbeat_pushes_deadline_and_wakes(store: Store) -> None:
    token = "h" * 43
    lease = leased(store, "e1")
    store.write_operations(lease, [callback("cb", token, heartbeat_timeout_s=60.0)], T0, TTL)
    store.finish_invocation(lease, InvocationEnd(status=ExecutionStatus.RUNNING), T0)
    beat = store.heartbeat_callback(token, T0 + timedelta(seconds=30))
    assert beat.heartbeat_deadline == T0 + timedelta(seconds=90)
    assert store.load_operations("e1")[0].heartbeat_deadline == T0 + timedelta(seconds=90)
    assert store.get_execution("e1").signal_seq == 1


def test_cancel_marks_and_wakes_and_refuses_finished(store: Store) -> None:
    lease = leased(store, "e1")
    store.finish_invocation(lease, InvocationEnd(status=ExecutionStatus.RUNNING, wake_at=None), T0)
    ex = store.request_cancel("e1", "customer asked", T0 + timedelta(seconds=3))
    assert ex.cancel_requested == "customer asked" and ex.wake_at == T0 + timedelta(seconds=3)
    lease = store.acquire_lease("e1", "w", T0 + timedelta(seconds=3), TTL)
    assert lease is not None
    store.finish_invocation(lease, InvocationEnd(status=ExecutionStatus.CANCELLED), T0)
    with pytest.raises(ExecutionNotRunningError, match="already finished"):
        store.request_cancel("e1", "again", T0)


def test_release_lease_frees_without_other_changes(store: Store) -> None:
    lease = leased(store, "e1")
    store.release_lease(lease)
    ex = store.get_execution("e1")
    assert ex.lease_owner is None and ex.status is ExecutionStatus.RUNNING
    store.release_lease(lease)  # releasing twice is harmless
    assert store.acquire_lease("e1", "w2", T0, TTL) is not None
