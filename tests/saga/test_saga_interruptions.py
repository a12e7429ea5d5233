"""A cancel or a deadline reaches a saga wherever it is suspended, and it rolls back once.

Each case suspends a saga at a different kind of operation, with completed compensatable
steps before it (and, for ``create_callback``, a step between creation and ``.result()``),
then cancels it or lets its deadline pass. Whatever the position, the rollback undoes each
completed step exactly once, in reverse order, and replaying the finished execution
changes nothing. Before the stop was delivered only at the code's frontier, the callback
cases ended FAILED with a NonDeterminismError and nothing undone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import tenacity
from saga_helpers import Effects, settle

from durable_core import (
    DurableContext,
    ExecutionStatus,
    RetryPolicy,
    Runtime,
    StepContext,
    durable,
)
from durable_core.errors import SimulatedCrash
from durable_core.testing import VirtualClock
from saga import SagaContext, SagaFunction, SagaStatus, saga, saga_status

HOUR = timedelta(hours=1)
SLOW_RETRY = RetryPolicy(stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_fixed(3 * 3600))

Suspend = Callable[[SagaContext, Effects], None]


def on_timer(s: SagaContext, fx: Effects) -> None:
    s.ctx.wait("cool-off", 3 * HOUR)


def on_created_callback(s: SagaContext, fx: Effects) -> None:
    # The pattern docs/operations.md teaches: create, send the token out in a step, wait.
    cb = s.ctx.create_callback("shipper", timeout=timedelta(days=7))
    s.step("notify", fx.action("notify"), compensate=fx.undo("notify"))
    s.ctx.step("log", lambda sc: None)
    cb.result()


def on_wait_for_callback(s: SagaContext, fx: Effects) -> None:
    s.ctx.wait_for_callback("approval", lambda token, sc: None, timeout=timedelta(days=7))


def on_condition(s: SagaContext, fx: Effects) -> None:
    s.ctx.wait_for_condition(
        "ready",
        lambda state, sc: state + 1,
        initial_state=0,
        done=lambda state: state >= 100,
        wait=tenacity.wait_fixed(3600),
        timeout=timedelta(days=30),
    )


def on_retry(s: SagaContext, fx: Effects) -> None:
    s.step("flaky", fx.action("flaky", fail=True), compensate=fx.undo("flaky"), retry=SLOW_RETRY)


def on_branch(s: SagaContext, fx: Effects) -> None:
    def slow(sc: StepContext) -> str:
        fx.log.append("do:slow")
        raise ConnectionError("slow service down")

    s.parallel(
        "group",
        [
            s.branch("quick", fx.action("quick"), compensate=fx.undo("quick")),
            s.branch("slow", slow, compensate=fx.undo("slow"), retry=SLOW_RETRY),
        ],
    )


def child_saga(fx: Effects) -> SagaFunction[None, str]:
    @saga(name="kid")
    def kid(s: SagaContext, event: None) -> str:
        s.step("k1", fx.action("k1"), compensate=fx.undo("k1"))
        s.ctx.create_callback("kid-wait", timeout=timedelta(days=7)).result()
        return "kid"

    return kid


def on_child_saga(s: SagaContext, fx: Effects) -> None:
    s.child("nested", child_saga(fx), None)


POINTS: dict[str, tuple[Suspend, list[str]]] = {
    "timer": (on_timer, ["undo:b", "undo:a"]),
    "create_callback": (on_created_callback, ["undo:notify", "undo:b", "undo:a"]),
    "wait_for_callback": (on_wait_for_callback, ["undo:b", "undo:a"]),
    "wait_for_condition": (on_condition, ["undo:b", "undo:a"]),
    "retrying_step": (on_retry, ["undo:b", "undo:a"]),
    "parallel_branch": (on_branch, ["undo:quick", "undo:b", "undo:a"]),
    "child_saga": (on_child_saga, ["undo:k1", "undo:b", "undo:a"]),
}


def suspended(fx: Effects, point: Suspend, *, deadline: timedelta | None) -> SagaFunction:
    @saga(name="suspended", deadline=deadline)
    def body(s: SagaContext, event: None) -> str:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step("b", fx.action("b"), compensate=fx.undo("b"))
        point(s, fx)
        s.step("c", fx.action("c"), compensate=fx.undo("c"))
        return "done"

    return body


def undo_log(fx: Effects) -> list[str]:
    return [e for e in fx.log if e.startswith("undo:")]


@pytest.mark.parametrize("stop", ["cancel", "deadline"])
@pytest.mark.parametrize("where", list(POINTS))
def test_a_stop_while_suspended_rolls_back_every_completed_step_once(
    rt: Runtime, clock: VirtualClock, where: str, stop: str
) -> None:
    point, expected = POINTS[where]
    fx = Effects()
    fn = suspended(fx, point, deadline=2 * HOUR if stop == "deadline" else None)
    ex = rt.run(fn)
    assert ex.status is ExecutionStatus.RUNNING, ex
    if stop == "cancel":
        rt.cancel(ex.id, "customer called")
    else:
        clock.advance(2 * HOUR)
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.CANCELLED, ex.error
    assert fx.count("do:c") == 0
    assert undo_log(fx) == expected  # each once, in reverse order
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPENSATED
    assert outcome.cause is not None
    assert outcome.cause.kind == ("cancelled" if stop == "cancel" else "deadline")
    assert outcome.not_undone == []
    # Replaying the finished journal changes nothing and runs nothing again.
    before = list(fx.log)
    assert rt.drive(ex.id).status is ExecutionStatus.CANCELLED
    assert fx.log == before


def test_a_cancel_reaches_an_invoked_child_saga_and_both_roll_back(
    rt: Runtime, clock: VirtualClock
) -> None:
    fx = Effects()
    kid = child_saga(fx)
    rt.register(kid)

    @saga(name="parent")
    def parent(s: SagaContext, event: None) -> str:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        return s.ctx.invoke(kid, None)  # type: ignore[no-any-return]

    ex = rt.run(parent)
    child = next(e for e in rt.store.list_executions() if e.parent_execution_id == ex.id)
    rt.drive(child.id)
    rt.cancel(ex.id, "order withdrawn")
    ex = settle(rt, ex.id)
    settle(rt, child.id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert rt.get(child.id).status is ExecutionStatus.CANCELLED
    assert fx.count("undo:a") == 1
    assert fx.count("undo:k1") == 1
    assert saga_status(rt, child.id).status is SagaStatus.COMPENSATED
    assert saga_status(rt, ex.id).status is SagaStatus.COMPENSATED


def test_a_plain_function_cancelled_between_create_callback_and_result_ends_cancelled(
    rt: Runtime,
) -> None:
    calls: list[str] = []

    @durable(name="tests:plain_callback_cancel")
    def plain(ctx: DurableContext, event: None) -> str:
        cb = ctx.create_callback("approval")
        ctx.step("send", lambda sc: calls.append("send"))
        ctx.step("audit", lambda sc: calls.append("audit"))
        return str(cb.result())

    ex = rt.run(plain)
    rt.cancel(ex.id, "no longer needed")
    ex = rt.drive(ex.id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert ex.error is not None and "no longer needed" in ex.error.message
    assert calls == ["send", "audit"]
    callback = next(op for op in rt.operations(ex.id) if op.name == "approval")
    assert callback.status.value == "CANCELLED"


def test_a_cancel_then_a_worker_death_mid_step_reruns_the_step_and_undoes_it(
    rt: Runtime, clock: VirtualClock
) -> None:
    """The step that was running when its worker died may have had its effect (at-least-once
    records nothing before the body): before, the recovering worker delivered the cancel at
    it, so it never ran again and its effect was never undone."""
    fx = Effects()
    died: list[bool] = []

    def s2(sc: StepContext) -> str:
        fx.log.append("do:s2")
        if not died:
            died.append(True)
            rt.cancel(sc.execution_id, "customer called")  # arrives while s2 runs
            raise SimulatedCrash("the worker dies before s2's result is recorded")
        return "s2-result"

    @saga(name="dies-mid-step")
    def body(s: SagaContext, event: None) -> str:
        s.step("s1", fx.action("s1"), compensate=fx.undo("s1"))
        s.step("s2", s2, compensate=fx.undo("s2"))
        s.step("s3", fx.action("s3"), compensate=fx.undo("s3"))
        return "done"

    eid = rt.start(body).id
    with pytest.raises(SimulatedCrash):
        rt.drive(eid)
    lease_expires = rt.get(eid).lease_expires
    assert lease_expires is not None  # the dead worker's lease stays behind
    clock.set(lease_expires + timedelta(seconds=1))
    ex = settle(rt, eid)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.count("do:s3") == 0
    assert undo_log(fx) == ["undo:s2", "undo:s1"]
    assert saga_status(rt, eid).status is SagaStatus.COMPENSATED
