"""Compensations that fail: retried with their own policy, parked when exhausted, and the
operator actions (retry, skip, resolve, terminate) that unpark them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import tenacity
from saga_helpers import Effects, settle

from durable_core import ExecutionStatus, RetryPolicy, Runtime
from saga import (
    CompensationContext,
    InvalidOperatorActionError,
    SagaContext,
    SagaFunction,
    SagaNotParkedError,
    SagaStatus,
    resolve,
    retry_compensation,
    saga,
    saga_status,
    skip_compensation,
    terminate,
)

THREE_TRIES = RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(120))


def three_steps(
    fx: Effects, *, b_failures: int = 0, b_always_fail: bool = False
) -> SagaFunction[None, str]:
    """a, b (whose undo may fail), c (fails): the rollback undoes b then a."""
    state = {"b_fixed": False}

    def undo_b(c: CompensationContext) -> str:
        if state["b_fixed"]:
            fx.log.append("undo:b")
            return "undid b"
        result: str = fx.undo("b", failures=b_failures, always_fail=b_always_fail)(c)
        return result

    @saga(name="three")
    def three(s: SagaContext, event: None) -> str:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step("b", fx.action("b"), compensate=undo_b, compensation_retry=THREE_TRIES)
        s.step("c", fx.action("c", fail=True), retry=RetryPolicy.no_retry())
        return "done"

    three.fix_b = lambda: state.update(b_fixed=True)  # type: ignore[attr-defined]
    return three


def test_undo_that_fails_twice_then_succeeds_runs_three_times_then_continues(rt: Runtime) -> None:
    fx = Effects()
    ex = settle(rt, rt.start(three_steps(fx, b_failures=2)).id)

    assert ex.status is ExecutionStatus.FAILED
    assert fx.log == ["do:a", "do:b", "do:c", "undo:b", "undo:b", "undo:b", "undo:a"]
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPENSATED
    assert [(c.step, c.status, c.attempts) for c in outcome.compensations] == [
        ("b", "compensated", 3),
        ("a", "compensated", 1),
    ]


def test_default_compensation_policy_backs_off_with_durable_timers(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="patient")
    def patient(s: SagaContext, event: None) -> None:
        s.step("a", fx.action("a"), compensate=fx.undo("a", failures=6))
        s.step("b", fx.action("b", fail=True), retry=RetryPolicy.no_retry())

    start = rt.clock.now()
    ex = rt.run(patient)
    assert ex.status is ExecutionStatus.RUNNING
    assert ex.wake_at is not None
    ex = settle(rt, ex.id)

    assert saga_status(rt, ex.id).status is SagaStatus.COMPENSATED
    assert fx.count("undo:a") == 7
    assert rt.clock.now() - start >= timedelta(seconds=1 + 2 + 4 + 8 + 16 + 32)


def parked(rt: Runtime, fx: Effects) -> str:
    ex = settle(rt, rt.start(three_steps(fx, b_always_fail=True)).id)
    assert ex.status is ExecutionStatus.RUNNING
    assert ex.wake_at is None
    return ex.id


def test_undo_that_never_succeeds_parks_the_saga_as_compensation_failed(rt: Runtime) -> None:
    fx = Effects()
    eid = parked(rt, fx)

    outcome = saga_status(rt, eid)
    assert outcome.status is SagaStatus.COMPENSATION_FAILED
    assert outcome.parked_on == "b"
    assert [(c.step, c.status) for c in outcome.compensations] == [
        ("b", "failed"),
        ("a", "pending"),
    ]
    assert outcome.not_undone == ["b", "a"]
    assert fx.count("undo:b") == 3
    assert fx.count("undo:a") == 0
    assert "operator:b" in (rt.get(eid).waiting_for or "")
    assert saga_status(rt, eid).compensated == []


def test_operator_retry_runs_the_undo_again_and_finishes_the_rollback(rt: Runtime) -> None:
    fx = Effects()
    three = three_steps(fx, b_always_fail=True)
    eid = settle(rt, rt.start(three).id).id
    three.fix_b()  # type: ignore[attr-defined]

    retry_compensation(rt, eid, actor="ops-anna")
    ex = settle(rt, eid)

    assert ex.status is ExecutionStatus.FAILED
    assert fx.log[-2:] == ["undo:b", "undo:a"]
    outcome = saga_status(rt, eid)
    assert outcome.status is SagaStatus.COMPENSATED
    assert [(a.action, a.step, a.actor) for a in outcome.operator_actions] == [
        ("retry", "b", "ops-anna")
    ]
    assert [c.status for c in outcome.compensations] == ["compensated", "compensated"]


def test_retry_that_fails_again_parks_again(rt: Runtime) -> None:
    fx = Effects()
    eid = parked(rt, fx)

    retry_compensation(rt, eid, drive=True)
    settle(rt, eid)

    assert saga_status(rt, eid).status is SagaStatus.COMPENSATION_FAILED
    assert fx.count("undo:b") == 6


def test_operator_skip_leaves_the_step_not_undone_and_never_says_compensated(rt: Runtime) -> None:
    fx = Effects()
    eid = parked(rt, fx)

    skip_compensation(rt, eid, "refunded by hand in ticket OPS-12")
    ex = settle(rt, eid)

    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None
    assert ex.error.type == "saga.errors.SagaPartiallyCompensated"
    assert fx.count("undo:a") == 1
    outcome = saga_status(rt, eid)
    assert outcome.status is SagaStatus.PARTIALLY_COMPENSATED
    assert [(c.step, c.status, c.note) for c in outcome.compensations] == [
        ("b", "skipped", "refunded by hand in ticket OPS-12"),
        ("a", "compensated", None),
    ]
    assert outcome.not_undone == ["b"]


def test_operator_resolve_counts_the_step_as_undone(rt: Runtime) -> None:
    fx = Effects()
    eid = parked(rt, fx)

    resolve(rt, eid, "cancelled with the hotel by phone")
    settle(rt, eid)

    outcome = saga_status(rt, eid)
    assert outcome.status is SagaStatus.COMPENSATED
    assert [c.status for c in outcome.compensations] == ["resolved", "compensated"]
    assert outcome.not_undone == []


def test_terminate_while_parked_ends_without_further_compensation(rt: Runtime) -> None:
    fx = Effects()
    eid = parked(rt, fx)

    terminate(rt, eid, "customer disputes; legal takes over")
    ex = settle(rt, eid)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.count("undo:a") == 0
    outcome = saga_status(rt, eid)
    assert outcome.status is SagaStatus.TERMINATED
    assert outcome.not_undone == ["b", "a"]


def test_actions_on_a_saga_that_is_not_parked_are_rejected_and_record_nothing(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="fine")
    def fine(s: SagaContext, event: None) -> str:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.ctx.create_callback("approval").result()
        return "ok"

    waiting = rt.run(fine)
    done = settle(rt, rt.start(three_steps(Effects())).id)
    for eid in (waiting.id, done.id):
        before = rt.operations(eid)
        actions: list[Callable[[str], object]] = [
            lambda e: retry_compensation(rt, e),
            lambda e: skip_compensation(rt, e, "why not"),
            lambda e: resolve(rt, e, "done"),
        ]
        for act in actions:
            with pytest.raises(SagaNotParkedError, match="not parked"):
                act(eid)
        assert rt.operations(eid) == before


def test_skip_or_resolve_without_a_reason_is_rejected_and_records_nothing(rt: Runtime) -> None:
    eid = parked(rt, Effects())
    before = rt.operations(eid)

    calls: list[Callable[[], object]] = [
        lambda: skip_compensation(rt, eid, ""),
        lambda: skip_compensation(rt, eid, "   "),
        lambda: resolve(rt, eid, ""),
        lambda: terminate(rt, eid, ""),
    ]
    for call in calls:
        with pytest.raises(InvalidOperatorActionError, match="non-empty"):
            call()

    assert rt.operations(eid) == before
    assert saga_status(rt, eid).status is SagaStatus.COMPENSATION_FAILED


def test_a_second_decision_for_the_same_park_is_rejected(rt: Runtime) -> None:
    eid = parked(rt, Effects())
    retry_compensation(rt, eid)

    with pytest.raises(SagaNotParkedError):
        skip_compensation(rt, eid, "too late")


def test_cancel_of_a_parked_saga_keeps_it_rolling_back(rt: Runtime) -> None:
    fx = Effects()
    eid = parked(rt, fx)

    rt.cancel(eid, "please stop")
    settle(rt, eid)

    assert saga_status(rt, eid).status is SagaStatus.COMPENSATION_FAILED
    skip_compensation(rt, eid, "accepted")
    ex = settle(rt, eid)
    assert ex.status is ExecutionStatus.FAILED
    assert fx.count("undo:a") == 1
