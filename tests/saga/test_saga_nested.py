"""A nested saga is one step of its parent and is compensated as a unit."""

from __future__ import annotations

from typing import Any

from saga_helpers import Effects, names, settle

from durable_core import ExecutionStatus, RetryPolicy, Runtime
from saga import (
    Saga,
    SagaContext,
    SagaFunction,
    SagaStatus,
    StepKind,
    saga,
    saga_status,
)


def trip(fx: Effects, *, fail: bool = False) -> SagaFunction[str, str]:
    @saga(name="trip")
    def trip_saga(s: SagaContext, city: str) -> str:
        s.step("flight", fx.action("flight"), compensate=fx.undo("flight"))
        s.step("hotel", fx.action("hotel", fail=fail), compensate=fx.undo("hotel"), retry=ONCE)
        return f"trip to {city}"

    return trip_saga


ONCE = RetryPolicy.no_retry()


def parent(fx: Effects, child: Any, *, fail_after: bool) -> SagaFunction[None, str]:
    @saga(name="parent")
    def parent_saga(s: SagaContext, event: None) -> str:
        s.step("deposit", fx.action("deposit"), compensate=fx.undo("deposit"))
        result: str = s.child("trip", child, "Da Nang")
        fx.log.append("stack:" + ",".join(s.undo_stack))
        s.step("insurance", fx.action("insurance", fail=fail_after), retry=ONCE)
        return result

    return parent_saga


def test_a_completed_child_is_compensated_as_a_unit_in_reverse(rt: Runtime) -> None:
    fx = Effects()
    ex = settle(rt, rt.start(parent(fx, trip(fx), fail_after=True)).id)

    assert ex.status is ExecutionStatus.FAILED
    assert fx.undone() == ["undo:hotel", "undo:flight", "undo:deposit"]
    assert names(rt.operations(ex.id)) == [
        "deposit",
        "trip/flight",
        "trip/hotel",
        "insurance",
        "saga:rollback",
        "compensate:trip/hotel",
        "compensate:trip/flight",
        "compensate:deposit",
    ]
    assert saga_status(rt, ex.id).status is SagaStatus.COMPENSATED


def test_a_failing_child_rolls_itself_back_then_the_parent_rolls_back(rt: Runtime) -> None:
    fx = Effects()
    ex = settle(rt, rt.start(parent(fx, trip(fx, fail=True), fail_after=False)).id)

    assert fx.undone() == ["undo:flight", "undo:deposit"]
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPENSATED
    assert outcome.cause is not None
    assert outcome.cause.step == "trip"
    assert outcome.cause.error_type == "saga.errors.SagaCompensated"
    assert [c.step for c in outcome.compensations] == ["trip/flight", "deposit"]
    assert "saga:rollback:trip" in names(rt.operations(ex.id))


def test_a_completed_parent_returns_the_childs_result(rt: Runtime) -> None:
    fx = Effects()
    ex = settle(rt, rt.start(parent(fx, trip(fx), fail_after=False)).id)

    assert ex.status is ExecutionStatus.SUCCEEDED
    assert rt.result(ex.id) == "trip to Da Nang"
    assert fx.undone() == []
    assert "stack:deposit,trip/flight,trip/hotel" in fx.log


def test_a_builder_saga_can_be_a_child(rt: Runtime) -> None:
    fx = Effects()
    child = (
        Saga("declared-trip")
        .step("flight", lambda sc, e, r: fx.action("flight")(sc), compensate=fx.undo("flight"))
        .step("hotel", lambda sc, e, r: fx.action("hotel")(sc), compensate=fx.undo("hotel"))
    )

    ex = settle(rt, rt.start(parent(fx, child, fail_after=True)).id)

    assert fx.undone() == ["undo:hotel", "undo:flight", "undo:deposit"]
    assert saga_status(rt, ex.id).status is SagaStatus.COMPENSATED


def test_a_child_may_not_declare_a_pivot(rt: Runtime) -> None:
    fx = Effects()
    child = Saga("pivoting").step("p", lambda sc, e, r: None, kind=StepKind.PIVOT)

    ex = settle(rt, rt.start(parent(fx, child, fail_after=False)).id)

    assert ex.error is not None
    assert ex.error.type == "saga.errors.SagaDefinitionError"
    assert "nested saga may not declare a pivot" in ex.error.message


def test_a_child_may_not_follow_the_pivot_or_be_something_else(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="late-child")
    def late_child(s: SagaContext, event: None) -> None:
        s.step("pay", fx.action("pay"), kind=StepKind.PIVOT)
        s.child("trip", trip(fx), "Hue")

    ex = settle(rt, rt.start(late_child).id)
    assert ex.error is not None
    assert "after the pivot" in ex.error.message

    @saga(name="not-a-child")
    def not_a_child(s: SagaContext, event: None) -> None:
        s.child("trip", print, "Hue")  # type: ignore[arg-type]

    ex = settle(rt, rt.start(not_a_child).id)
    assert ex.error is not None
    assert ex.error.type == "saga.errors.SagaDefinitionError"
    assert "expected a saga" in ex.error.message
