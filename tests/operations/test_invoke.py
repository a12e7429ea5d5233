"""invoke: a child execution started once, awaited durably, its failure typed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from durable_core import (
    DurableContext,
    ExecutionStatus,
    InvokeError,
    MemoryStore,
    OperationStatus,
    OperationType,
    Runtime,
    StopKind,
    durable,
)
from durable_core.errors import SimulatedCrash
from durable_core.operations.invoke import child_execution_id
from durable_core.records import MAX_REASON_LENGTH, Lease, Operation
from durable_core.testing import DurableTestRunner, VirtualClock, check_crash_safety
from durable_core.testing._stores import DelegatingStore
from tests.operations.conftest import Ledger, replay_finished, settle

LEDGER = Ledger()
"""Module-level so the module-level durable functions can count their runs."""


@pytest.fixture(autouse=True)
def _fresh_ledger() -> None:
    LEDGER.counts.clear()


@durable(name="tests:invoke:double")
def double(ctx: DurableContext, n: int) -> int:
    LEDGER.hit(f"child-run-{ctx.execution_id}")
    return ctx.step("double", lambda sc: LEDGER.count("child-step", n * 2))


@durable(name="tests:invoke:broken")
def broken(ctx: DurableContext, n: int) -> int:
    raise KeyError(f"no price for {n}")


@durable(name="tests:invoke:slow")
def slow(ctx: DurableContext, n: int) -> int:
    ctx.wait("slowly", timedelta(days=1))
    return n


@durable(name="tests:invoke:parent")
def parent(ctx: DurableContext, n: int) -> int:
    doubled = ctx.invoke(double, n)
    again: int = ctx.invoke("tests:invoke:double", doubled, name="double-again")
    return ctx.step("sum", lambda sc: LEDGER.count("parent-step", doubled + again))


@durable(name="tests:invoke:catcher")
def catcher(ctx: DurableContext, n: int) -> list[str | None]:
    try:
        ctx.invoke(broken, n)
    except InvokeError as exc:
        return [exc.function, exc.error_type, str(exc)]
    return []


def runtime(store: MemoryStore, clock: VirtualClock) -> Runtime:
    return Runtime(store, clock=clock, functions=[double, broken, slow, parent, catcher])


def test_invoke_runs_the_child_once_and_returns_its_result(
    memory_store: MemoryStore, virtual_clock: VirtualClock
) -> None:
    rt = runtime(memory_store, virtual_clock)
    ex = rt.run(parent, 5, execution_id="p1")
    assert ex.status is ExecutionStatus.RUNNING
    assert ex.wake_at is None  # waits for the child, which wakes it
    settle(rt)
    assert rt.get("p1").status is ExecutionStatus.SUCCEEDED
    assert rt.result("p1") == 10 + 20
    children = [e for e in memory_store.list_executions() if e.parent_execution_id == "p1"]
    assert len(children) == 2
    invokes = [op for op in rt.operations("p1") if op.type is OperationType.CHAINED_INVOKE]
    assert [op.name for op in invokes] == ["tests:invoke:double", "double-again"]
    assert {op.child_execution_id for op in invokes} == {c.id for c in children}
    assert all(op.child_execution_id == child_execution_id("p1", op.id) for op in invokes)
    assert LEDGER["child-step"] == 2
    assert LEDGER["parent-step"] == 1
    end, writes = replay_finished(memory_store, virtual_clock, parent, "p1", services=rt)
    assert (end.result, writes) == ("30", 0)


def test_test_runner_drives_parent_and_child(durable_runner: Any) -> None:
    runner = durable_runner(parent, functions=[double], always_replay=True)
    result = runner.run(4)
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == 24
    assert len(runner.store.list_executions()) == 3
    assert LEDGER["child-step"] == 2


def test_child_failure_is_a_typed_invoke_error_on_every_replay(
    memory_store: MemoryStore, virtual_clock: VirtualClock
) -> None:
    rt = runtime(memory_store, virtual_clock)
    rt.run(catcher, 7, execution_id="c1")
    settle(rt)
    function, error_type, message = rt.result("c1")
    assert function == "tests:invoke:broken"
    assert error_type == "KeyError"
    assert message == "'no price for 7'"  # the child's error message as it is (as AWS's SDK)
    op = next(op for op in rt.operations("c1") if op.type is OperationType.CHAINED_INVOKE)
    assert op.status is OperationStatus.FAILED
    end, writes = replay_finished(memory_store, virtual_clock, catcher, "c1")
    assert (end.result, writes) == (rt.get("c1").result, 0)


def test_cancelling_the_parent_cancels_the_waiting_child(
    memory_store: MemoryStore, virtual_clock: VirtualClock
) -> None:
    @durable(name="tests:invoke:waits_for_slow")
    def waits(ctx: DurableContext, n: int) -> int:
        return ctx.invoke(slow, n)

    rt = runtime(memory_store, virtual_clock)
    rt.register(waits)
    rt.run(waits, 1, execution_id="w1")
    settle(rt)  # the child starts and waits a day
    child_id = next(e.id for e in memory_store.list_executions() if e.parent_execution_id)
    assert rt.get(child_id).status is ExecutionStatus.RUNNING
    rt.cancel("w1", "order withdrawn")
    settle(rt)
    assert rt.get("w1").status is ExecutionStatus.CANCELLED
    assert rt.get(child_id).status is ExecutionStatus.CANCELLED
    request = rt.get(child_id).stop_request(StopKind.CANCEL)
    assert request is not None
    assert (request.reason, request.actor) == (
        "parent cancel: order withdrawn",
        "parent execution w1",
    )


@pytest.mark.parametrize("stop", ["cancel", "terminate"])
def test_a_longest_reason_and_id_still_reach_the_waiting_child(
    memory_store: MemoryStore, virtual_clock: VirtualClock, stop: str
) -> None:
    """The request passed on to the child adds text to the parent's reason and id: bounded,
    so a parent stopped with the longest reason its own request accepts stops its child."""

    @durable(name="tests:invoke:waits_long")
    def waits(ctx: DurableContext, n: int) -> int:
        return ctx.invoke(slow, n)

    rt = runtime(memory_store, virtual_clock)
    rt.register(waits)
    eid = "p" * 200  # the longest execution id
    rt.run(waits, 1, execution_id=eid)
    settle(rt)
    child_id = next(e.id for e in memory_store.list_executions() if e.parent_execution_id)
    reason = "r" * MAX_REASON_LENGTH
    rt.cancel(eid, reason) if stop == "cancel" else rt.terminate(eid, reason)
    settle(rt)

    assert rt.get(eid).status is ExecutionStatus.CANCELLED
    assert rt.get(child_id).status is ExecutionStatus.CANCELLED
    (passed,) = rt.get(child_id).stop_requests
    assert passed.kind.value == stop
    assert len(passed.reason) == MAX_REASON_LENGTH
    assert passed.actor is not None and passed.actor.startswith("parent execution ")


def test_a_cancelled_child_surfaces_as_invoke_error(
    memory_store: MemoryStore, virtual_clock: VirtualClock
) -> None:
    @durable(name="tests:invoke:child_cancelled")
    def waits(ctx: DurableContext, n: int) -> str:
        try:
            ctx.invoke(slow, n)
        except InvokeError as exc:
            return str(exc)
        return "no error"

    rt = runtime(memory_store, virtual_clock)
    rt.register(waits)
    rt.run(waits, 1, execution_id="w2")
    settle(rt)
    child_id = next(e.id for e in memory_store.list_executions() if e.parent_execution_id)
    rt.cancel(child_id, "operator stopped it")
    settle(rt)
    assert "was cancelled" in rt.result("w2")
    op = next(op for op in rt.operations("w2") if op.type is OperationType.CHAINED_INVOKE)
    assert op.status is OperationStatus.CANCELLED


class CrashAfterInvokeRecorded(DelegatingStore):
    """Kills the worker right after the parent's CHAINED_INVOKE STARTED record is durable,
    before the child is started."""

    def __init__(self, inner: MemoryStore) -> None:
        super().__init__(inner)
        self.crashed = False

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        lease = self.inner.write_operations(lease, operations, now, ttl)
        if not self.crashed and any(
            op.type is OperationType.CHAINED_INVOKE and op.status is OperationStatus.STARTED
            for op in operations
        ):
            self.crashed = True
            raise SimulatedCrash("killed between recording the invoke and starting the child")
        return lease


def test_crash_between_record_and_start_starts_the_child_exactly_once(
    memory_store: MemoryStore, virtual_clock: VirtualClock
) -> None:
    crashing = CrashAfterInvokeRecorded(memory_store)
    rt = Runtime(crashing, clock=virtual_clock, functions=[double, parent])
    with pytest.raises(SimulatedCrash):
        rt.run(parent, 3, execution_id="p2")
    assert [e.id for e in memory_store.list_executions()] == ["p2"]  # no child yet
    virtual_clock.advance(timedelta(minutes=5))  # the dead worker's lease expires
    settle(rt)
    assert rt.result("p2") == 18
    children = [e for e in memory_store.list_executions() if e.parent_execution_id == "p2"]
    assert len(children) == 2
    assert LEDGER.snapshot() == {
        **{f"child-run-{c.id}": 1 for c in children},
        "child-step": 2,
        "parent-step": 1,
    }


def test_crash_at_every_write_never_starts_a_second_child() -> None:
    def one_child_per_invoke(result: Any) -> None:
        runs = {k: v for k, v in LEDGER.snapshot().items() if k.startswith("child-run-")}
        assert len(runs) == 2, runs  # two invokes, two distinct child executions, never more

    report = check_crash_safety(
        parent,
        2,
        functions=[double],
        before_each=LEDGER.counts.clear,
        check=one_child_per_invoke,
    )
    report.assert_ok()
    assert report.baseline.result == 12


def test_invoke_inside_map_items(memory_store: MemoryStore, virtual_clock: VirtualClock) -> None:
    @durable(name="tests:invoke:fan_out")
    def fan_out(ctx: DurableContext, ns: list[int]) -> list[int]:
        return ctx.map(ns, lambda c, n, i: c.invoke(double, n)).raise_if_failed().values()

    runner = DurableTestRunner(fan_out, store=memory_store, clock=virtual_clock, functions=[double])
    result = runner.run([1, 2, 3])
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == [2, 4, 6]
    assert len(memory_store.list_executions()) == 4
