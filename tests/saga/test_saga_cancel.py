"""Cancel and deadline roll a saga back at its next step boundary; terminate does not."""

from __future__ import annotations

from datetime import timedelta

import pytest
import tenacity
from saga_helpers import Effects, names, settle

from durable_core import ExecutionNotRunningError, ExecutionStatus, RetryPolicy, Runtime
from durable_core.testing import VirtualClock
from saga import SagaContext, SagaFunction, SagaStatus, StepKind, saga, saga_status, terminate

SLOW_RETRY = RetryPolicy(stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_fixed(3600))


def waiting_saga(fx: Effects, *, deadline: timedelta | None = None) -> SagaFunction[None, str]:
    """a, b, then wait 2 hours, then c."""

    @saga(name="waits", deadline=deadline)
    def waits(s: SagaContext, event: None) -> str:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step("b", fx.action("b"), compensate=fx.undo("b"))
        s.ctx.wait("cool-off", timedelta(hours=2))
        s.step("c", fx.action("c"), compensate=fx.undo("c"))
        return "done"

    return waits


def test_cancel_while_waiting_rolls_back_at_the_next_boundary(rt: Runtime) -> None:
    fx = Effects()
    ex = rt.run(waiting_saga(fx))
    assert ex.status is ExecutionStatus.RUNNING

    rt.cancel(ex.id, "customer changed their mind")
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.log == ["do:a", "do:b", "undo:b", "undo:a"]
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPENSATED
    assert outcome.cause is not None
    assert outcome.cause.kind == "cancelled"
    assert outcome.cause.message == "customer changed their mind"
    assert [c.step for c in outcome.compensations] == ["b", "a"]


def test_cancel_during_a_retry_delay_stops_the_step_and_rolls_back(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="retrying")
    def retrying(s: SagaContext, event: None) -> None:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step("b", fx.action("b", fail=True), compensate=fx.undo("b"), retry=SLOW_RETRY)

    ex = rt.run(retrying)
    assert ex.wake_at is not None  # b's retry is a durable timer
    rt.cancel(ex.id, "stop")
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.log == ["do:a", "do:b", "undo:a"]
    step_b = next(s for s in saga_status(rt, ex.id).steps if s.name == "b")
    assert step_b.status == "cancelled"


def test_the_deadline_rolls_the_saga_back(rt: Runtime, clock: VirtualClock) -> None:
    fx = Effects()
    started = clock.now()

    ex = settle(rt, rt.start(waiting_saga(fx, deadline=timedelta(hours=1))).id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.log == ["do:a", "do:b", "undo:b", "undo:a"]
    assert clock.now() - started == timedelta(hours=1)
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPENSATED
    assert outcome.cause is not None
    assert outcome.cause.kind == "deadline"


def test_terminate_ends_a_running_saga_without_compensating(rt: Runtime) -> None:
    fx = Effects()
    ex = rt.run(waiting_saga(fx))

    terminate(rt, ex.id, "duplicate order, handled by support")
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.undone() == []
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.TERMINATED
    assert outcome.not_undone == ["a", "b"]
    assert "saga:rollback" not in names(rt.operations(ex.id))


def test_cancel_during_the_rollback_is_absorbed_and_the_rollback_finishes(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="slow-undo")
    def slow_undo(s: SagaContext, event: None) -> None:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step("b", fx.action("b"), compensate=fx.undo("b", failures=3))
        s.step("c", fx.action("c", fail=True), retry=RetryPolicy.no_retry())

    ex = rt.run(slow_undo)
    assert ex.status is ExecutionStatus.RUNNING  # b's undo waits to retry
    rt.cancel(ex.id, "hurry up")
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.FAILED
    # the cancel is recorded on b's pending undo; the undo is re-issued at the next position
    # with a fresh attempt count, so it fails 2 + 3 times and then succeeds, once
    assert fx.count("undo:b") == 6
    assert fx.count("undo:a") == 1
    assert saga_status(rt, ex.id).status is SagaStatus.COMPENSATED


def test_cancel_after_the_pivot_is_ignored_and_the_saga_completes(rt: Runtime) -> None:
    fx = Effects()

    def ship(sc: object) -> str:
        fx.log.append("do:ship")
        if fx.count("do:ship") <= 2:
            raise ConnectionError("carrier down")
        return "shipped"

    @saga(name="committed")
    def committed(s: SagaContext, event: None) -> str:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step("pay", fx.action("pay"), kind=StepKind.PIVOT)
        return s.step("ship", ship, retry=SLOW_RETRY)

    ex = rt.run(committed)
    assert ex.status is ExecutionStatus.RUNNING  # ship waits an hour to retry
    rt.cancel(ex.id, "too late")
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.SUCCEEDED
    assert fx.undone() == []
    assert fx.count("do:ship") == 3
    assert saga_status(rt, ex.id).status is SagaStatus.COMPLETED


def test_cancel_inside_a_nested_saga_rolls_back_the_child_then_the_parent(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="child")
    def child(s: SagaContext, event: None) -> None:
        s.step("c1", fx.action("c1"), compensate=fx.undo("c1"))
        s.ctx.wait("think", timedelta(hours=1))
        s.step("c2", fx.action("c2"), compensate=fx.undo("c2"))

    @saga(name="parent")
    def parent(s: SagaContext, event: None) -> None:
        s.step("p1", fx.action("p1"), compensate=fx.undo("p1"))
        s.child("kid", child, None)
        s.step("p2", fx.action("p2"), compensate=fx.undo("p2"))

    ex = rt.run(parent)
    rt.cancel(ex.id, "stop everything")
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.log == ["do:p1", "do:c1", "undo:c1", "undo:p1"]
    assert "saga:rollback:kid" in names(rt.operations(ex.id))
    assert saga_status(rt, ex.id).status is SagaStatus.COMPENSATED


def test_terminate_of_a_finished_saga_is_refused(rt: Runtime) -> None:
    fx = Effects()
    ex = settle(rt, rt.start(waiting_saga(fx)).id)
    assert ex.status is ExecutionStatus.SUCCEEDED

    with pytest.raises(ExecutionNotRunningError, match="already finished"):
        terminate(rt, ex.id, "too late")
