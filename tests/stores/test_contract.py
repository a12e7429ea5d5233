"""The store contract (``durable_core.stores.base``): every backend in conftest must pass."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from durable_core.errors import (
    CallbackAlreadyCompletedError,
    CallbackNotFoundError,
    ExecutionNotFoundError,
    ExecutionNotRunningError,
    LeaseLostError,
    PrivilegedCallbackError,
    ValidationError,
)
from durable_core.records import (
    MAX_STOP_REQUESTS,
    CallbackOutcome,
    ErrorInfo,
    ExecutionStatus,
    Lease,
    Operation,
    OperationStatus,
    OperationType,
    StopKind,
    StopRequest,
)
from durable_core.stores.base import InvocationEnd, Store
from durable_core.stores.search import ExecutionQuery

from .records import T0, TTL, at, callback, datetimes, execution, leased, step, token

SUCCEEDED = InvocationEnd(status=ExecutionStatus.SUCCEEDED, result="1")
WAITING = InvocationEnd(status=ExecutionStatus.RUNNING, wake_at=None, waiting_for="an event")


def race(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together; each result or raised error."""
    results: list[object] = [None] * n
    gate = threading.Barrier(n)

    def run(i: int) -> None:
        gate.wait()
        try:
            results[i] = work(i)
        except Exception as e:
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


# --- executions ---------------------------------------------------------------------------


def test_create_is_idempotent_by_id(store: Store) -> None:
    first, created = store.create_execution(execution("e1"))
    other = execution("e1", created=at(60)).evolve(input='{"other": true}')
    again, created_again = store.create_execution(other)
    assert created
    assert not created_again
    assert again == first
    assert store.get_execution("e1") == first


def test_unknown_execution_id_is_not_found(store: Store) -> None:
    with pytest.raises(ExecutionNotFoundError, match="nope"):
        store.get_execution("nope")
    with pytest.raises(ExecutionNotFoundError):
        store.load_operations("nope")
    with pytest.raises(ExecutionNotFoundError):
        store.acquire_lease("nope", "w", T0, TTL)
    with pytest.raises(ExecutionNotFoundError):
        store.request_stop("nope", stop("cancel", "r"), T0)


def test_list_is_newest_first_with_status_filter_and_limit(store: Store) -> None:
    for i in (1, 3, 0, 2):
        store.create_execution(execution(f"e{i}", created=at(60 * i)))
    lease = store.acquire_lease("e1", "w", T0, TTL)
    assert lease is not None
    store.finish_invocation(lease, SUCCEEDED, T0)
    assert [e.id for e in store.list_executions()] == ["e3", "e2", "e1", "e0"]
    running = store.list_executions(status=ExecutionStatus.RUNNING)
    assert [e.id for e in running] == ["e3", "e2", "e0"]
    assert [e.id for e in store.list_executions(status=ExecutionStatus.SUCCEEDED)] == ["e1"]
    assert store.list_executions(status=ExecutionStatus.FAILED) == []
    assert [e.id for e in store.list_executions(limit=2)] == ["e3", "e2"]


def test_records_round_trip_unchanged(store: Store, store_factory: Callable[[], Store]) -> None:
    full = execution(
        "e1",
        deadline=at(86400),
        version="v2",
        parent_execution_id="p",
        waiting_for="timer",
        stop_requests=(stop("cancel", "customer asked", actor="ana"), stop("terminate", "t")),
        role="saga",
    )
    store.create_execution(full)
    lease = store.acquire_lease("e1", "w", T0, TTL)
    assert lease is not None
    op = Operation(
        id="3f2a",
        parent_id="root",
        type=OperationType.STEP,
        sub_type="Step",
        name="charge card",
        status=OperationStatus.PENDING,
        attempt=3,
        result='{"amount": 12.5, "currency": "EUR", "note": "caf\\u00e9 \\ud83d\\ude00"}',
        payload="[1, 2, 3]",
        error=ErrorInfo(
            type="app.Declined", message="déclinée ✗", traceback="Trace\n  x", data="{}"
        ),
        started_at=at(1),
        ended_at=at(2),
        next_attempt_at=at(3),
        role="saga.pivot",
    )
    store.write_operations(lease, [op], at(1), TTL)
    assert store.load_operations("e1") == [op]
    assert store_factory().load_operations("e1") == [op]
    stored = store_factory().get_execution("e1")
    assert stored == full.evolve(lease_owner="w", lease_expires=at(30), fence=1, updated_at=T0)


def test_datetimes_round_trip_timezone_aware_utc(store: Store) -> None:
    when = T0.replace(microsecond=123456)
    lease = leased(store, "e1", deadline=when)
    cb = callback("cb", token(), timeout_at=when, heartbeat_deadline=when, heartbeat_timeout_s=5)
    store.write_operations(lease, [step("a", started_at=when, ended_at=when), cb], T0, TTL)
    records = [store.get_execution("e1"), *store.load_operations("e1")]
    stamps = [dt for r in records for dt in datetimes(r).values()]
    assert len(stamps) >= 8
    assert all(dt.utcoffset() == timedelta(0) for dt in stamps)
    assert store.get_execution("e1").deadline == when
    assert store.load_operations("e1")[0].started_at == when
    assert store.load_operations("e1")[1].timeout_at == when


def test_load_order_is_first_write_order_even_after_upserts(
    store: Store, store_factory: Callable[[], Store]
) -> None:
    lease = leased(store, "e1")
    lease = store.write_operations(lease, [step("b", OperationStatus.PENDING)], T0, TTL)
    lease = store.write_operations(lease, [step("a"), step("c", OperationStatus.STARTED)], T0, TTL)
    lease = store.write_operations(lease, [step("c"), step("b", attempt=2), step("d")], T0, TTL)
    for handle in (store, store_factory()):
        ops = handle.load_operations("e1")
        assert [o.id for o in ops] == ["b", "a", "c", "d"]
        assert ops[0] == step("b", attempt=2)
        assert ops[2].status is OperationStatus.SUCCEEDED
    leased(store, "e2")
    assert store.load_operations("e2") == []


# --- leases -------------------------------------------------------------------------------


def test_lease_excludes_others_until_expiry_then_takeover_increments_fence(store: Store) -> None:
    first = leased(store, "e1", "w1")
    assert (first.fence, first.owner, first.expires) == (1, "w1", at(30))
    assert store.acquire_lease("e1", "w2", at(29), TTL) is None
    assert store.acquire_lease("e1", "w1", at(29), TTL) is None  # not re-entrant either
    second = store.acquire_lease("e1", "w2", at(30), TTL)  # expired exactly now
    assert second is not None
    assert (second.fence, second.owner, second.expires) == (2, "w2", at(60))
    ex = store.get_execution("e1")
    assert (ex.fence, ex.lease_owner, ex.lease_expires) == (2, "w2", at(60))


def test_finished_execution_cannot_be_leased(store: Store) -> None:
    lease = leased(store, "e1")
    failed = InvocationEnd(status=ExecutionStatus.FAILED, error=ErrorInfo(type="X", message="m"))
    done = store.finish_invocation(lease, failed, at(1))
    assert done.status is ExecutionStatus.FAILED
    assert done.error == ErrorInfo(type="X", message="m")
    assert (done.lease_owner, done.lease_expires, done.wake_at) == (None, None, None)
    assert store.acquire_lease("e1", "w", at(3600), TTL) is None
    assert store.get_execution("e1") == done


def test_stale_lease_writes_are_refused_and_change_nothing(store: Store) -> None:
    stale = leased(store, "e1", "w1")
    cb = token()
    store.write_operations(stale, [step("a", OperationStatus.STARTED), callback("cb", cb)], T0, TTL)
    fresh = store.acquire_lease("e1", "w2", at(31), TTL)
    assert fresh is not None
    before = (store.get_execution("e1"), store.load_operations("e1"))

    with pytest.raises(LeaseLostError):
        store.write_operations(stale, [step("a"), step("new")], at(31), TTL)
    with pytest.raises(LeaseLostError):
        store.write_operations(stale, [step("late")], at(60), TTL)  # a renewing write too
    with pytest.raises(LeaseLostError):
        store.finish_invocation(stale, SUCCEEDED, at(32))
    with pytest.raises(LeaseLostError):
        store.renew_lease(stale, at(33), TTL)
    store.release_lease(stale)  # a no-op: must not free the new holder's lease

    assert (store.get_execution("e1"), store.load_operations("e1")) == before
    store.write_operations(fresh, [step("a")], at(34), TTL)
    assert store.load_operations("e1")[0] == step("a")


def test_write_operations_is_all_or_nothing(
    store: Store, store_factory: Callable[[], Store]
) -> None:
    lease = leased(store, "e1", "w1")
    store.write_operations(lease, [step("a", OperationStatus.STARTED)], T0, TTL)
    taken = store.acquire_lease("e1", "w2", at(30), TTL)
    assert taken is not None
    batch = [step("b"), step("a"), step("c"), callback("cb", token())]
    with pytest.raises(LeaseLostError):
        store.write_operations(lease, batch, at(30), TTL)
    assert store.load_operations("e1") == [step("a", OperationStatus.STARTED)]
    store.write_operations(taken, batch, at(31), TTL)
    assert store_factory().load_operations("e1") == [step("a"), step("b"), step("c"), batch[3]]


def test_write_renews_the_lease_once_half_of_it_is_spent(store: Store) -> None:
    lease = leased(store, "e1")
    kept = store.write_operations(lease, [step("a")], at(10), TTL)
    assert kept == lease
    renewed = store.write_operations(kept, [step("b")], at(20), TTL)
    assert (renewed.expires, renewed.fence) == (at(50), lease.fence)
    assert store.get_execution("e1").lease_expires == at(50)
    assert store.acquire_lease("e1", "w2", at(40), TTL) is None


def test_renew_extends_a_held_lease(store: Store) -> None:
    lease = leased(store, "e1")
    renewed = store.renew_lease(lease, at(20), TTL)
    assert renewed == lease.model_copy(update={"expires": at(50)})
    assert store.acquire_lease("e1", "w2", at(40), TTL) is None
    assert store.acquire_lease("e1", "w2", at(50), TTL) is not None


def test_release_frees_the_lease_and_changes_nothing_else(store: Store) -> None:
    lease = leased(store, "e1")
    before = store.get_execution("e1")
    store.release_lease(lease)
    ex = store.get_execution("e1")
    assert ex == before.evolve(lease_owner=None, lease_expires=None)
    store.release_lease(lease)  # twice is harmless
    again = store.acquire_lease("e1", "w2", at(1), TTL)
    assert again is not None
    assert again.fence == 2


def test_taking_over_a_lease_never_released_counts_a_recovery_until_a_finish(
    store: Store, store_factory: Callable[[], Store]
) -> None:
    leased(store, "e1", "w1")
    assert store.get_execution("e1").recovery_attempts == 0
    assert store.acquire_lease("e1", "w2", at(30), TTL) is not None  # w1 died holding it
    assert store.get_execution("e1").recovery_attempts == 1
    [third] = store.claim_due("w3", at(60), TTL, 1)  # w2 died too: the claim path counts
    assert store_factory().get_execution("e1").recovery_attempts == 2
    store.release_lease(third)  # a release is no death: nothing counted, nothing reset
    fourth = store.acquire_lease("e1", "w4", at(61), TTL)
    assert fourth is not None
    assert store.get_execution("e1").recovery_attempts == 2
    done = store.finish_invocation(fourth, WAITING, at(62))
    assert done.recovery_attempts == 0
    assert store_factory().get_execution("e1").recovery_attempts == 0
    assert store.acquire_lease("e1", "w5", at(63), TTL) is not None  # free again: no count
    assert store.get_execution("e1").recovery_attempts == 0


# --- claim_due ----------------------------------------------------------------------------


def test_claim_due_returns_only_due_free_running_executions(store: Store) -> None:
    store.create_execution(execution("due-early", wake=at(-120)))
    store.create_execution(execution("due-now", wake=T0))
    store.create_execution(execution("later", wake=at(1)))
    store.create_execution(execution("event-only", wake=None))
    store.create_execution(
        execution("finished", wake=at(-60), status=ExecutionStatus.SUCCEEDED, result="1")
    )
    leased(store, "held", now=at(-10), wake=at(-90))  # lease until T0+20
    leased(store, "dead-worker", now=at(-60), wake=at(-100))  # lease expired at T0-30

    leases = store.claim_due("w9", T0, TTL, 10)
    assert [(lease.execution_id, lease.fence) for lease in leases] == [
        ("due-early", 1),
        ("dead-worker", 2),
        ("due-now", 1),
    ]
    assert all(lease.owner == "w9" and lease.expires == at(30) for lease in leases)
    for lease in leases:
        ex = store.get_execution(lease.execution_id)
        assert (ex.lease_owner, ex.fence) == ("w9", lease.fence)
    assert store.claim_due("w8", T0, TTL, 10) == []
    assert store.get_execution("finished").lease_owner is None
    assert [lease.execution_id for lease in store.claim_due("w8", at(21), TTL, 10)] == [
        "held",
        "later",
    ]


def test_claim_due_takes_the_earliest_first_up_to_the_limit(store: Store) -> None:
    for i in (3, 0, 4, 1, 2):
        store.create_execution(execution(f"e{i}", wake=at(i - 10)))
    assert [lease.execution_id for lease in store.claim_due("w", T0, TTL, 2)] == ["e0", "e1"]
    assert [lease.execution_id for lease in store.claim_due("w", T0, TTL, 2)] == ["e2", "e3"]
    assert [lease.execution_id for lease in store.claim_due("w", T0, TTL, 2)] == ["e4"]
    assert store.claim_due("w", T0, TTL, 2) == []


def test_claim_due_never_gives_one_execution_to_two_owners(
    store: Store, store_factory: Callable[[], Store]
) -> None:
    ids = [f"e{i:03}" for i in range(120)]
    for eid in ids:
        store.create_execution(execution(eid))
    handles = [store, store_factory(), store_factory()]

    def claim(i: int) -> list[Lease]:
        got: list[Lease] = []
        while batch := handles[i % 3].claim_due(f"w{i}", T0, TTL, 3):
            got.extend(batch)
        return got

    results = race(6, claim)
    assert all(isinstance(got, list) for got in results), results
    claimed = [lease for got in results for lease in got]  # type: ignore[attr-defined]
    assert sorted(lease.execution_id for lease in claimed) == ids
    for lease in claimed:
        ex = store.get_execution(lease.execution_id)
        assert (ex.lease_owner, ex.fence) == (lease.owner, 1)


# --- finishing an invocation ----------------------------------------------------------------


def test_finish_records_the_end_and_releases_the_lease(store: Store) -> None:
    lease = leased(store, "e1")
    end = InvocationEnd(status=ExecutionStatus.RUNNING, wake_at=at(86400 * 3), waiting_for="timer")
    ex = store.finish_invocation(lease, end, at(5))
    assert (ex.wake_at, ex.waiting_for, ex.updated_at) == (at(86400 * 3), "timer", at(5))
    assert (ex.lease_owner, ex.lease_expires, ex.fence) == (None, None, 1)
    assert store.get_execution("e1") == ex
    assert store.claim_due("w", at(86400 * 2), TTL, 5) == []
    assert [lease.execution_id for lease in store.claim_due("w", at(86400 * 3), TTL, 5)] == ["e1"]


def test_finish_records_the_first_role_and_never_changes_it(store: Store) -> None:
    lease = leased(store, "e1")
    assert store.get_execution("e1").role is None
    assert store.finish_invocation(lease, WAITING, at(1)).role is None
    lease = store.acquire_lease("e1", "w", at(2), TTL)
    assert lease is not None
    ex = store.finish_invocation(lease, WAITING.model_copy(update={"role": "saga"}), at(3))
    assert ex.role == "saga" == store.get_execution("e1").role
    for role, end in ((None, WAITING), ("other", SUCCEEDED)):  # later ones change nothing
        lease = store.acquire_lease("e1", "w", at(4), TTL)
        assert lease is not None
        done = store.finish_invocation(lease, end.model_copy(update={"role": role}), at(5))
        assert done.role == "saga" == store.get_execution("e1").role


def test_search_by_role_and_waiting_text_left_out(store: Store) -> None:
    rows = [
        execution("plain", waiting_for="callback 'x'"),
        execution("saga-run", created=at(1), waiting_for="callback 'x'", role="saga"),
        execution("saga-undo", created=at(2), waiting_for="retry of step 'compensate:a'"),
        execution("saga-undo2", created=at(3), waiting_for="Retry OF STEP 'compensate:b'"),
    ]
    rows[2] = rows[2].evolve(role="saga")
    rows[3] = rows[3].evolve(role="saga")
    for row in rows:
        store.create_execution(row)
    query = ExecutionQuery(role="saga", waiting_excludes=("of step 'compensate:",))
    assert [e.id for e in store.search_executions(query).items] == ["saga-run"]
    assert [e.id for e in rows if query.matches(e)] == ["saga-run"]
    everything = ExecutionQuery(role="saga")
    assert [e.id for e in store.search_executions(everything).items] == [
        "saga-undo2",
        "saga-undo",
        "saga-run",
    ]


def test_finish_success_keeps_the_result_and_ends_the_lease(store: Store) -> None:
    lease = leased(store, "e1")
    ex = store.finish_invocation(lease, SUCCEEDED, at(5))
    assert (ex.status, ex.result, ex.wake_at) == (ExecutionStatus.SUCCEEDED, "1", None)
    with pytest.raises(LeaseLostError):  # the lease ended with the first finish
        store.finish_invocation(lease, SUCCEEDED, at(6))
    with pytest.raises(LeaseLostError):
        store.write_operations(lease, [step("late")], at(6), TTL)
    assert store.get_execution("e1") == ex
    assert store.load_operations("e1") == []


@pytest.mark.parametrize("event", ["callback", "heartbeat", "cancel", "child"])
def test_finish_keeps_the_execution_due_when_an_event_arrived_meanwhile(
    store: Store, event: str
) -> None:
    lease = leased(store, "e1")
    cb = token()
    lease = store.write_operations(lease, [callback("cb", cb, heartbeat_timeout_s=60)], T0, TTL)
    if event == "callback":
        store.complete_callback(cb, CallbackOutcome(status=OperationStatus.SUCCEEDED), at(1))
    elif event == "heartbeat":
        store.heartbeat_callback(cb, at(1))
    elif event == "cancel":
        store.request_stop("e1", stop("cancel", "operator"), at(1))
    else:
        child = leased(store, "child", "w2", parent_execution_id="e1")
        store.finish_invocation(child, SUCCEEDED, at(1))
    assert store.get_execution("e1").signal_seq == 1
    ex = store.finish_invocation(lease, WAITING, at(2))
    assert ex.wake_at == at(2)
    assert [lease.execution_id for lease in store.claim_due("w3", at(2), TTL, 5)] == ["e1"]


@pytest.mark.parametrize(
    "status", [ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED]
)
def test_terminal_finish_wakes_the_parent(store: Store, status: ExecutionStatus) -> None:
    parent = leased(store, "parent")
    store.finish_invocation(parent, WAITING, T0)
    child = leased(store, "child", "w2", parent_execution_id="parent")
    store.finish_invocation(child, WAITING.model_copy(update={"wake_at": at(60)}), at(1))
    assert store.get_execution("parent").signal_seq == 0  # a suspended child wakes nobody
    child = store.acquire_lease("child", "w2", at(60), TTL)
    assert child is not None
    store.finish_invocation(child, InvocationEnd(status=status), at(61))
    ex = store.get_execution("parent")
    assert (ex.signal_seq, ex.wake_at, ex.updated_at) == (1, at(61), at(61))
    assert [lease.execution_id for lease in store.claim_due("w", at(61), TTL, 5)] == ["parent"]


# --- callbacks ----------------------------------------------------------------------------


def test_complete_callback_once_then_refused_changing_nothing(store: Store) -> None:
    cb = token()
    lease = leased(store, "e1")
    store.write_operations(lease, [callback("cb", cb, timeout_at=at(3600))], T0, TTL)
    store.finish_invocation(lease, WAITING, at(1))
    outcome = CallbackOutcome(status=OperationStatus.SUCCEEDED, result='{"a": 1}')
    done = store.complete_callback(cb, outcome, at(5))
    assert done == callback("cb", cb, timeout_at=at(3600)).evolve(
        status=OperationStatus.SUCCEEDED, result='{"a": 1}', ended_at=at(5)
    )
    assert store.load_operations("e1") == [done]
    ex = store.get_execution("e1")
    assert (ex.signal_seq, ex.wake_at) == (1, at(5))

    late = CallbackOutcome(status=OperationStatus.FAILED, error=ErrorInfo(type="X", message="l"))
    with pytest.raises(CallbackAlreadyCompletedError, match="Nothing was changed"):
        store.complete_callback(cb, late, at(6))
    with pytest.raises(CallbackAlreadyCompletedError):
        store.heartbeat_callback(cb, at(6))
    assert store.load_operations("e1") == [done]
    assert store.get_execution("e1") == ex


def test_complete_callback_records_a_failure(store: Store) -> None:
    cb = token()
    store.write_operations(leased(store, "e1"), [callback("cb", cb)], T0, TTL)
    error = ErrorInfo(type="ShipperError", message="no truck", data='{"code": 7}')
    done = store.complete_callback(
        cb, CallbackOutcome(status=OperationStatus.FAILED, error=error), at(2)
    )
    assert (done.status, done.error, done.result) == (OperationStatus.FAILED, error, None)
    assert store.load_operations("e1") == [done]


def test_complete_callback_raced_from_many_threads_has_one_winner(
    store: Store, store_factory: Callable[[], Store]
) -> None:
    cb = token()
    store.write_operations(leased(store, "e1"), [callback("cb", cb)], T0, TTL)
    handles = [store, store_factory()]

    def complete(i: int) -> Operation:
        outcome = CallbackOutcome(status=OperationStatus.SUCCEEDED, result=str(i))
        return handles[i % 2].complete_callback(cb, outcome, at(1))

    results = race(8, complete)
    winners = [r for r in results if isinstance(r, Operation)]
    assert len(winners) == 1
    assert all(isinstance(r, CallbackAlreadyCompletedError) for r in results if r not in winners)
    assert store.load_operations("e1") == winners
    assert store.get_execution("e1").signal_seq == 1


def test_unknown_callback_token_is_not_found(store: Store) -> None:
    store.write_operations(leased(store, "e1"), [callback("cb", token())], T0, TTL)
    outcome = CallbackOutcome(status=OperationStatus.SUCCEEDED)
    with pytest.raises(CallbackNotFoundError, match="No callback has this token"):
        store.complete_callback("forged-" + "y" * 36, outcome, T0)
    with pytest.raises(CallbackNotFoundError):
        store.heartbeat_callback("forged-" + "y" * 36, T0)
    assert store.load_operations("e1")[0].status is OperationStatus.STARTED


def test_a_privileged_callback_is_refused_to_generic_callers_and_changes_nothing(
    store: Store, store_factory: Callable[[], Store]
) -> None:
    cb = token()
    lease = leased(store, "e1")
    store.write_operations(lease, [callback("operator:b", cb, privileged=True)], T0, TTL)
    store.finish_invocation(lease, WAITING, at(1))
    other = store_factory()  # what another process reads back: the flag is persisted
    assert other.load_operations("e1")[0].privileged is True
    before = (store.load_operations("e1"), store.get_execution("e1"))
    forged = CallbackOutcome(status=OperationStatus.SUCCEEDED, result='{"action": "skip"}')
    with pytest.raises(PrivilegedCallbackError, match="privileged.*Nothing was changed"):
        other.complete_callback(cb, forged, at(2))
    failed = CallbackOutcome(status=OperationStatus.FAILED, error=ErrorInfo(type="X", message="x"))
    with pytest.raises(PrivilegedCallbackError):
        other.complete_callback(cb, failed, at(2))
    with pytest.raises(PrivilegedCallbackError):
        other.heartbeat_callback(cb, at(2))
    assert (store.load_operations("e1"), store.get_execution("e1")) == before

    done = other.complete_callback(cb, forged, at(3), privileged=True)
    assert (done.status, done.result, done.privileged) == (
        OperationStatus.SUCCEEDED,
        '{"action": "skip"}',
        True,
    )
    assert store.get_execution("e1").signal_seq == 1
    with pytest.raises(PrivilegedCallbackError):  # refused before its state is told
        other.complete_callback(cb, forged, at(4))


def test_heartbeat_pushes_the_deadline_and_wakes(store: Store) -> None:
    cb, plain = token(), token()
    lease = leased(store, "e1")
    ops = [callback("cb", cb, heartbeat_timeout_s=60.0), callback("plain", plain)]
    store.write_operations(lease, ops, T0, TTL)
    store.finish_invocation(lease, WAITING, T0)
    beat = store.heartbeat_callback(cb, at(30))
    assert beat == ops[0].evolve(heartbeat_deadline=at(90))
    assert store.load_operations("e1")[0] == beat
    ex = store.get_execution("e1")
    assert (ex.signal_seq, ex.wake_at) == (1, at(30))
    assert store.heartbeat_callback(plain, at(31)).heartbeat_deadline is None
    assert store.load_operations("e1")[1].status is OperationStatus.STARTED


# --- cancel and handles ---------------------------------------------------------------------


def stop(kind: str, reason: str, *, actor: str | None = None, t: int = 0) -> StopRequest:
    return StopRequest(kind=StopKind(kind), reason=reason, actor=actor, requested_at=at(t))


def test_request_stop_appends_and_wakes_a_running_execution(store: Store) -> None:
    lease = leased(store, "e1")
    store.finish_invocation(lease, WAITING, T0)
    first = stop("cancel", "customer asked", actor="ana", t=3)
    ex = store.request_stop("e1", first, at(3))
    assert (ex.stop_requests, ex.wake_at, ex.signal_seq) == ((first,), at(3), 1)
    assert store.get_execution("e1") == ex
    # A second request never overwrites the first: it is appended, in arrival order.
    second, term = stop("cancel", "again", t=4), stop("terminate", "stop it", actor="bo", t=5)
    store.request_stop("e1", second, at(4))
    ex = store.request_stop("e1", term, at(5))
    assert ex.stop_requests == (first, second, term)
    assert ex.stop_request(StopKind.CANCEL) == first
    assert ex.stop_request(StopKind.TERMINATE) == term
    assert store.get_execution("e1") == ex


def test_request_stop_on_a_finished_execution_is_refused(store: Store) -> None:
    store.finish_invocation(leased(store, "e1"), SUCCEEDED, T0)
    before = store.get_execution("e1")
    with pytest.raises(ExecutionNotRunningError, match="already finished"):
        store.request_stop("e1", stop("cancel", "too late"), at(1))
    assert store.get_execution("e1") == before


def test_request_stop_past_the_limit_is_refused_and_records_nothing(store: Store) -> None:
    leased(store, "e1")
    for i in range(MAX_STOP_REQUESTS):
        store.request_stop("e1", stop("cancel", f"r{i}"), at(i))
    before = store.get_execution("e1")
    with pytest.raises(ValidationError, match="stop requests"):
        store.request_stop("e1", stop("terminate", "one more"), at(99))
    assert store.get_execution("e1") == before


def test_another_handle_sees_every_committed_write(
    store: Store, store_factory: Callable[[], Store]
) -> None:
    cb = token()
    lease = leased(store, "e1")
    store.write_operations(lease, [step("a"), callback("cb", cb)], T0, TTL)
    store.finish_invocation(lease, WAITING, at(1))
    store.close()
    other = store_factory()
    assert [o.id for o in other.load_operations("e1")] == ["a", "cb"]
    assert other.get_execution("e1").waiting_for == "an event"
    other.complete_callback(cb, CallbackOutcome(status=OperationStatus.SUCCEEDED), at(2))
    assert store_factory().get_execution("e1").signal_seq == 1
