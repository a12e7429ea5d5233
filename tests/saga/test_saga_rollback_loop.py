"""The rollback loop and the operator park are separable from how their durable operations
run: a driver with no durable context sees the same requests, in the same order, as the
sync ``roll_back`` and the async ``roll_back_async``."""

from __future__ import annotations

from typing import Any

import pytest

from durable_core import (
    CallbackFailedError,
    ExecutionCancelledError,
    ExecutionTerminatedError,
    NonDeterminismError,
    RetryPolicy,
    StepFailedError,
)
from saga._records import OperatorDecision, RollbackCause, RollbackPlan
from saga.compensation import (
    OpenCallback,
    Park,
    ReadCallback,
    RollbackReport,
    RunStep,
    Undo,
    park_loop,
    rollback_loop,
)


class _Log:
    def __init__(self) -> None:
        self.events: list[str] = []

    def warning(self, event: str, **_: Any) -> None:
        self.events.append(event)

    def error(self, event: str, **_: Any) -> None:
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


def test_the_park_waits_on_a_fresh_callback_until_a_valid_decision_arrives() -> None:
    log = _Log()
    park = park_loop(
        "trip", Park(_undo("b"), _failed("compensate:b")), execution_id="x", logger=log
    )

    assert next(park) == OpenCallback("operator:b")
    assert park.send("cb-1") == ReadCallback("cb-1")
    assert park.throw(CallbackFailedError("not a decision")) == OpenCallback("operator:b")
    assert park.send("cb-2") == ReadCallback("cb-2")
    assert park.send({"action": "dance"}) == OpenCallback("operator:b")  # invalid: ignored
    park.send("cb-3")
    assert park.throw(ExecutionCancelledError("stop", reason="stop")) == OpenCallback(
        "operator:b"
    )  # a cancel is absorbed: the rollback must finish
    park.send("cb-4")
    with pytest.raises(StopIteration) as done:
        park.send({"action": "retry", "actor": "ops"})
    assert done.value.value == OperatorDecision(action="retry", actor="ops")
    assert "ignored an invalid operator decision" in log.events


def test_a_terminate_ends_the_park() -> None:
    park = park_loop(
        "trip", Park(_undo("b"), _failed("compensate:b")), execution_id="x", logger=_Log()
    )
    next(park)
    park.send("cb-1")

    with pytest.raises(ExecutionTerminatedError):
        park.throw(ExecutionTerminatedError("terminated", reason="fraud"))
