"""Branches that wait (timers, callbacks) do not block the others; cancellation in a branch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from durable_core import (
    DurableContext,
    ExecutionCancelledError,
    ExecutionStatus,
    OperationStatus,
    Runtime,
    StepContext,
    StopKind,
    durable,
)
from durable_core.operations.batch import CompletionPolicy
from durable_core.testing import VirtualClock
from tests.operations.conftest import Ledger, replay_finished

TWO_DAYS = timedelta(days=2)


def test_a_branch_waiting_two_days_while_the_others_finish(
    rt: Runtime, virtual_clock: VirtualClock, ledger: Ledger
) -> None:
    start = virtual_clock.now()

    @durable(name="tests:two_days")
    def wf(ctx: DurableContext, event: None) -> list[str]:
        def item(c: DurableContext, name: str, i: int) -> str:
            c.step("before", lambda sc: ledger.hit(f"before-{name}"))
            if name == "slow":
                c.wait("two-days", TWO_DAYS)
            c.step("after", lambda sc: ledger.hit(f"after-{name}"))
            return name

        return ctx.map(["a", "slow", "b"], item).raise_if_failed().values()

    ex = rt.run(wf, None)
    assert ex.status is ExecutionStatus.RUNNING
    assert ex.wake_at == start + TWO_DAYS
    assert "1 branch(es) waiting" in (ex.waiting_for or "")
    assert ledger.snapshot() == {
        "before-a": 1,
        "after-a": 1,
        "before-b": 1,
        "after-b": 1,
        "before-slow": 1,
    }
    done = {op.name: op.status for op in rt.operations(ex.id) if op.sub_type == "MapIteration"}
    assert done == {
        "map-item-0": OperationStatus.SUCCEEDED,
        "map-item-2": OperationStatus.SUCCEEDED,
    }

    assert rt.tick() == 0  # nothing is due before the two days are over
    virtual_clock.advance(TWO_DAYS)
    assert rt.tick() == 1
    assert rt.get(ex.id).status is ExecutionStatus.SUCCEEDED
    assert rt.result(ex.id) == ["a", "slow", "b"]
    assert set(ledger.snapshot().values()) == {1}
    assert len(ledger.snapshot()) == 6
    end, writes = replay_finished(rt.store, virtual_clock, wf, ex.id)
    assert (end.result, writes) == (rt.get(ex.id).result, 0)


def test_the_batch_wakes_at_the_earliest_waiting_branch(
    rt: Runtime, virtual_clock: VirtualClock
) -> None:
    start = virtual_clock.now()

    @durable(name="tests:earliest")
    def wf(ctx: DurableContext, event: None) -> list[int]:
        def item(c: DurableContext, hours: int, i: int) -> int:
            c.wait("nap", timedelta(hours=hours))
            return hours

        return ctx.map([48, 1, 5], item).values()

    ex = rt.run(wf, None)
    assert ex.wake_at == start + timedelta(hours=1)
    virtual_clock.advance(timedelta(hours=1))
    rt.tick()
    assert rt.get(ex.id).wake_at == start + timedelta(hours=5)
    virtual_clock.advance(timedelta(hours=4))
    rt.tick()
    assert rt.get(ex.id).wake_at == start + timedelta(hours=48)
    virtual_clock.advance(timedelta(hours=43))
    rt.tick()
    assert rt.result(ex.id) == [48, 1, 5]


def test_a_branch_waiting_on_a_callback(rt: Runtime, ledger: Ledger) -> None:
    tokens: list[str] = []

    @durable(name="tests:callback_branch")
    def wf(ctx: DurableContext, event: None) -> list[Any]:
        def approval(c: DurableContext) -> Any:
            def submit(token: str, sc: StepContext) -> None:
                ledger.hit("submit")
                tokens.append(token)

            return c.wait_for_callback("approval", submit)

        def work(c: DurableContext) -> str:
            return c.step("work", lambda sc: ledger.count("work", "done"))

        return ctx.parallel([approval, work]).raise_if_failed().values()

    ex = rt.run(wf, None)
    assert ex.status is ExecutionStatus.RUNNING
    assert ex.wake_at is None  # waits for the event only
    assert ledger.snapshot() == {"submit": 1, "work": 1}
    rt.send_callback_success(tokens[0], {"approved": True})
    assert rt.tick() == 1
    assert rt.result(ex.id) == [{"approved": True}, "done"]
    assert ledger.snapshot() == {"submit": 1, "work": 1}


def test_a_failed_callback_fails_only_its_branch(rt: Runtime) -> None:
    tokens: list[str] = []

    @durable(name="tests:callback_fails")
    def wf(ctx: DurableContext, event: None) -> list[str]:
        def approval(c: DurableContext) -> Any:
            return c.wait_for_callback("approval", lambda token, sc: tokens.append(token))

        result = ctx.parallel(
            [approval, lambda c: "other"], completion=CompletionPolicy.all_completed()
        )
        return [i.status.value for i in result.items]

    ex = rt.run(wf, None)
    rt.send_callback_failure(tokens[0], "rejected by a human")
    rt.tick()
    assert rt.result(ex.id) == ["FAILED", "SUCCEEDED"]


def test_fail_fast_does_not_wait_for_a_suspended_branch(
    rt: Runtime, virtual_clock: VirtualClock
) -> None:
    @durable(name="tests:fail_fast_waiting")
    def wf(ctx: DurableContext, event: None) -> list[str]:
        def waiting(c: DurableContext) -> str:
            c.wait("long", TWO_DAYS)
            return "late"

        def failing(c: DurableContext) -> str:
            raise RuntimeError("broken")

        result = ctx.parallel([waiting, failing])
        return [result.completion_reason.value, *(i.status.value for i in result.items)]

    ex = rt.run(wf, None)
    assert ex.status is ExecutionStatus.SUCCEEDED  # no two-day wait
    assert rt.result(ex.id) == ["FAILURE_TOLERANCE_EXCEEDED", "STARTED", "FAILED"]
    statuses = {op.name: op.status for op in rt.operations(ex.id)}
    assert "parallel-branch-0" not in statuses  # left STARTED: no record of its end


def test_cancellation_inside_a_branch_is_recorded_and_re_raised(
    rt: Runtime, virtual_clock: VirtualClock, ledger: Ledger
) -> None:
    """The deadline passes while a branch runs: the branch's next operation raises the
    cancellation; the batch records it, re-raises it, and the workflow compensates."""

    @durable(name="tests:cancel_in_branch", timeout=timedelta(hours=1))
    def wf(ctx: DurableContext, event: None) -> str:
        def slow(c: DurableContext) -> str:
            c.step("takes-two-hours", lambda sc: virtual_clock.advance(timedelta(hours=2)))
            c.step("never", lambda sc: ledger.hit("never"))
            return "x"

        try:
            ctx.map(["only"], lambda c, x, i: slow(c), completion=CompletionPolicy.all_completed())
        except ExecutionCancelledError as exc:
            reason = exc.reason
            ctx.step("compensate", lambda sc: ledger.hit(f"compensate-{reason}"))
            raise
        return "unreachable"

    ex = rt.run(wf, None)
    assert ex.status is ExecutionStatus.CANCELLED
    assert ledger.snapshot() == {"compensate-deadline": 1}
    ops = {op.name: op for op in rt.operations(ex.id)}
    assert ops["map-item-0"].status is OperationStatus.FAILED
    assert ops["map"].error is not None
    assert StopKind.of_error(ops["map"].error) is StopKind.DEADLINE
    end, writes = replay_finished(rt.store, virtual_clock, wf, ex.id)
    assert (end.status, writes) == (ExecutionStatus.CANCELLED, 0)
    assert ledger.snapshot() == {"compensate-deadline": 1}


def test_cancel_while_branches_wait(rt: Runtime, ledger: Ledger) -> None:
    @durable(name="tests:cancel_waiting")
    def wf(ctx: DurableContext, event: None) -> str:
        def item(c: DurableContext, x: int, i: int) -> int:
            c.wait("nap", TWO_DAYS)
            return x

        try:
            ctx.map([1, 2], item)
        except ExecutionCancelledError:
            ctx.step("undo", lambda sc: ledger.hit("undo"))
            raise
        return "done"

    ex = rt.run(wf, None)
    assert ex.status is ExecutionStatus.RUNNING
    rt.cancel(ex.id, "customer changed their mind")
    rt.tick()
    ex = rt.get(ex.id)
    assert ex.status is ExecutionStatus.CANCELLED
    assert ledger.snapshot() == {"undo": 1}
    # Delivered inside the first branch (at its wait, the code's frontier), never at the
    # unfinished map itself; the map records the stop that came out of it.
    batch = next(op for op in rt.operations(ex.id) if op.sub_type == "Map")
    assert batch.status is OperationStatus.FAILED
    assert StopKind.of_error(batch.error) is StopKind.CANCEL
    branches = [op.status for op in rt.operations(ex.id) if op.sub_type == "MapIteration"]
    # the branch that took the stop FAILED with it; the other is recorded stopped with it
    assert sorted(branches) == [OperationStatus.CANCELLED, OperationStatus.FAILED]
