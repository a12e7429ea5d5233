"""The rollback loop is separable from how its durable operations run: a driver with no
durable context sees the same requests, in the same order, as the sync ``roll_back``."""

from __future__ import annotations

from typing import Any

import pytest

from durable_core import NonDeterminismError, RetryPolicy, StepFailedError
from saga._records import OperatorDecision, RollbackCause, RollbackPlan
from saga.compensation import Park, RollbackReport, RunStep, Undo, rollback_loop


class _Log:
    def __init__(self) -> None:
        self.events: list[str] = []

    def warning(self, event: str, **_: Any) -> None:
        self.events.append(event)


def _undo(step: str) -> Undo:
    return Undo(step, f"x:{step}", lambda _c: None, RetryPolicy.no_retry())


def _failed(step: str) -> StepFailedError:
    return StepFailedError("down", step=step, error_type="ConnectionError", attempts=3)


def _loop(log: _Log) -> Any:
    return rollback_loop(
        saga="trip",
        path="",
        stack=[_undo("a"), _undo("b")],
        cause=RollbackCause(kind="failure", step="c", error_type="E", message="m"),
        execution_id="x",
        logger=log,
    )


def test_the_loop_asks_for_the_plan_then_each_undo_in_reverse_and_parks_on_a_failure() -> None:
    log = _Log()
    loop = _loop(log)

    plan = next(loop)
    assert isinstance(plan, RunStep) and plan.name == "saga:rollback"
    recorded = plan.run(None)  # type: ignore[arg-type]  # the plan step ignores its context
    assert isinstance(recorded, RollbackPlan) and [i.step for i in recorded.steps] == ["b", "a"]

    b = loop.send(recorded)
    assert isinstance(b, RunStep) and b.name == "compensate:b"
    assert log.events == ["saga rolling back"]
    parked = loop.throw(_failed("compensate:b"))
    assert isinstance(parked, Park) and parked.undo.step == "b"
    again = loop.send(OperatorDecision(action="retry"))
    assert again == b
    parked = loop.throw(_failed("compensate:b"))
    a = loop.send(OperatorDecision(action="skip", reason="done by hand"))
    assert isinstance(a, RunStep) and a.name == "compensate:a"

    with pytest.raises(StopIteration) as done:
        loop.send(None)
    report = done.value.value
    assert isinstance(report, RollbackReport)
    assert (report.compensated, report.skipped) == (["a"], ["b"])


def test_a_recorded_plan_that_differs_stops_the_loop_before_any_undo() -> None:
    loop = _loop(_Log())
    recorded = next(loop).run(None)  # type: ignore[arg-type]

    with pytest.raises(NonDeterminismError, match="rollback plan"):
        loop.send(recorded.model_copy(update={"steps": recorded.steps[:1]}))
