"""Parallel saga steps: succeeded branches are compensated in reverse start order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import tenacity
from pydantic import BaseModel
from saga_helpers import Effects, names, settle

from durable_core import ExecutionStatus, RetryPolicy, Runtime, StepContext
from durable_core.testing import VirtualClock, check_crash_safety
from saga import SagaContext, SagaFunction, SagaStatus, StepKind, saga, saga_status

ONCE = RetryPolicy.no_retry()


class Room(BaseModel):
    ref: str


def group(
    fx: Effects, *, fail_branch: str | None = None, fail_after: bool = False
) -> SagaFunction[None, list[Any]]:
    @saga(name="group")
    def group_saga(s: SagaContext, event: None) -> list[Any]:
        s.step("flight", fx.action("flight"), compensate=fx.undo("flight"))
        booked = s.parallel(
            "stay",
            [
                s.branch(
                    name,
                    fx.action(name, fail=name == fail_branch),
                    compensate=fx.undo(name),
                    retry=ONCE,
                )
                for name in ("hotel", "car", "guide")
            ],
        )
        s.step("insurance", fx.action("insurance", fail=fail_after), retry=ONCE)
        return booked

    return group_saga


def test_branches_run_and_return_their_results_in_branch_order(rt: Runtime) -> None:
    fx = Effects()
    ex = settle(rt, rt.start(group(fx)).id)

    assert ex.status is ExecutionStatus.SUCCEEDED
    assert rt.result(ex.id) == ["hotel-result", "car-result", "guide-result"]
    assert {"stay/hotel", "stay/car", "stay/guide"} <= set(names(rt.operations(ex.id)))


def test_a_later_failure_compensates_the_branches_in_reverse_start_order(rt: Runtime) -> None:
    fx = Effects()
    ex = settle(rt, rt.start(group(fx, fail_after=True)).id)

    assert fx.undone() == ["undo:guide", "undo:car", "undo:hotel", "undo:flight"]
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPENSATED
    assert [c.step for c in outcome.compensations] == [
        "stay/guide",
        "stay/car",
        "stay/hotel",
        "flight",
    ]


def test_a_failed_branch_rolls_back_the_branches_that_succeeded(rt: Runtime) -> None:
    fx = Effects()
    ex = settle(rt, rt.start(group(fx, fail_branch="car")).id)

    assert ex.status is ExecutionStatus.FAILED
    assert fx.count("do:hotel") == fx.count("do:guide") == 1  # every branch ran to its end
    assert fx.undone() == ["undo:guide", "undo:hotel", "undo:flight"]
    outcome = saga_status(rt, ex.id)
    assert outcome.cause is not None
    assert outcome.cause.step == "stay"
    assert outcome.cause.error_type == "RuntimeError"
    assert "insurance" not in names(rt.operations(ex.id))


def test_an_uncertain_branch_is_undone_too(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="uncertain-group")
    def uncertain_group(s: SagaContext, event: None) -> None:
        s.parallel(
            "pay",
            [
                s.branch("deposit", fx.action("deposit"), compensate=fx.undo("deposit")),
                s.branch(
                    "card",
                    fx.action("card", fail=True),
                    compensate=fx.undo("card"),
                    compensate_uncertain=True,
                    retry=ONCE,
                ),
            ],
        )

    ex = settle(rt, rt.start(uncertain_group).id)

    assert fx.undone() == ["undo:card", "undo:deposit"]
    assert [c.uncertain for c in saga_status(rt, ex.id).compensations] == [True, False]


def test_branch_results_keep_their_type(rt: Runtime) -> None:
    def book(sc: StepContext, ref: str) -> Room:
        return Room(ref=ref)

    seen: list[object] = []

    @saga(name="typed-group")
    def typed_group(s: SagaContext, event: None) -> str:
        rooms = s.parallel("rooms", [s.branch("a", book, "A-1"), s.branch("b", book, "B-2")])
        seen.append(rooms)
        return "+".join(r.ref for r in rooms)

    ex = settle(rt, rt.start(typed_group).id)

    assert rt.result(ex.id) == "A-1+B-2"
    assert all(isinstance(r, Room) for r in seen[-1])  # type: ignore[attr-defined]


def test_cancel_during_a_parallel_group_rolls_back_every_branch_that_succeeded(
    rt: Runtime,
) -> None:
    fx = Effects()
    slow = RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(3600))

    def flaky_car(sc: StepContext) -> str:
        fx.log.append("do:car")
        if fx.count("do:car") == 1:
            raise ConnectionError("car service down")
        return "car-result"

    @saga(name="cancelled-group")
    def cancelled_group(s: SagaContext, event: None) -> None:
        s.step("flight", fx.action("flight"), compensate=fx.undo("flight"))
        s.parallel(
            "stay",
            [
                s.branch("hotel", fx.action("hotel"), compensate=fx.undo("hotel")),
                s.branch("car", flaky_car, compensate=fx.undo("car"), retry=slow),
            ],
        )
        s.step("insurance", fx.action("insurance"))

    ex = rt.run(cancelled_group)
    assert ex.status is ExecutionStatus.RUNNING  # the car branch waits an hour to retry
    rt.cancel(ex.id, "traveller cancelled")
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.count("do:insurance") == 0
    # The cancel reaches the car's step, waiting to retry: it never runs again, and its one
    # failed attempt had no effect to undo. The hotel is read back from its own record.
    assert fx.count("do:car") == 1
    assert fx.undone() == ["undo:hotel", "undo:flight"]
    assert saga_status(rt, ex.id).status is SagaStatus.COMPENSATED
    assert fx.count("do:hotel") == 1


def test_a_deadline_inside_a_running_group_stops_the_unstarted_branch_then_rolls_back(
    rt: Runtime, clock: VirtualClock
) -> None:
    fx = Effects()

    def slow_hotel(sc: StepContext) -> str:
        fx.log.append("do:hotel")
        clock.advance(timedelta(hours=2))  # the work takes longer than the saga may
        return "hotel-result"

    @saga(name="slow-group", deadline=timedelta(hours=1))
    def slow_group(s: SagaContext, event: None) -> None:
        s.step("flight", fx.action("flight"), compensate=fx.undo("flight"))
        s.parallel(
            "stay",
            [
                s.branch("hotel", slow_hotel, compensate=fx.undo("hotel")),
                s.branch("car", fx.action("car"), compensate=fx.undo("car")),
            ],
            max_concurrency=1,
        )
        s.step("insurance", fx.action("insurance"))

    ex = settle(rt, rt.start(slow_group).id)

    assert ex.status is ExecutionStatus.CANCELLED
    # The deadline passes during the hotel; the car's step, not started yet, is where it
    # is delivered: the car never runs, and the hotel and flight are undone.
    assert fx.count("do:car") == 0
    assert fx.count("do:insurance") == 0
    assert fx.undone() == ["undo:hotel", "undo:flight"]
    outcome = saga_status(rt, ex.id)
    assert outcome.cause is not None
    assert outcome.cause.kind == "deadline"


def test_a_parallel_group_survives_a_crash_at_every_checkpoint() -> None:
    fx = Effects()

    def check(result: object) -> None:
        assert fx.undone() == ["undo:guide", "undo:hotel", "undo:flight"]

    report = check_crash_safety(group(fx, fail_branch="car"), before_each=fx.log.clear, check=check)

    report.assert_ok()


def noop(sc: StepContext) -> None:
    return None


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda s: s.parallel("p", []), "non-empty list"),
        (lambda s: s.parallel("p", [noop]), "must be made with s.branch"),
        (lambda s: s.parallel("p", [s.branch("a", noop), s.branch("a", noop)]), "duplicate"),
        (
            lambda s: s.parallel("p", [s.branch("a", noop, kind=StepKind.PIVOT)]),
            "cannot be the pivot",
        ),
        (lambda s: s.parallel("p", [s.branch("a", noop, compensate=42)]), "compensate must be"),
    ],
)
def test_bad_parallel_declarations_record_nothing(
    rt: Runtime, declare: Callable[[SagaContext], object], message: str
) -> None:
    @saga(name="bad-group")
    def bad_group(s: SagaContext, event: None) -> None:
        declare(s)

    ex = settle(rt, rt.start(bad_group).id)

    assert ex.error is not None
    assert ex.error.type == "saga.errors.SagaDefinitionError"
    assert message in ex.error.message
    assert rt.operations(ex.id) == []


def test_a_compensatable_branch_after_the_pivot_is_rejected(rt: Runtime) -> None:
    @saga(name="late-group")
    def late_group(s: SagaContext, event: None) -> None:
        s.step("pay", noop, kind=StepKind.PIVOT)
        s.parallel("p", [s.branch("a", noop, compensate=print)])

    ex = settle(rt, rt.start(late_group).id)

    assert ex.error is not None
    assert "after the pivot" in ex.error.message
    assert names(rt.operations(ex.id)) == ["pay"]
