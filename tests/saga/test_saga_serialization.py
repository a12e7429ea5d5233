"""Saga steps whose values cannot cross the journal: refused before any effect, and a value
that could not be recorded after its effect is compensated, never left behind."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from saga_helpers import Effects, settle

from durable_core import (
    ExecutionStatus,
    RetryPolicy,
    Runtime,
    SerializationError,
    StepContext,
)
from saga import CompensationContext, Saga, SagaContext, saga, saga_status

ONCE = RetryPolicy.no_retry()


def lock_action(fx: Effects) -> Callable[..., threading.Lock]:
    """An action annotated to return a lock; logs ``do:lock`` if it ever runs."""

    def take_lock(sc: StepContext, *args: object) -> threading.Lock:
        fx.log.append("do:lock")
        return threading.Lock()

    return take_lock


def test_a_builder_step_with_an_unserializable_return_type_is_refused_at_definition(
    rt: Runtime,
) -> None:
    fx = Effects()
    base = Saga("locks").step("first", fx.action("first"), compensate=fx.undo("first"))

    with pytest.raises(SerializationError) as caught:
        base.step("take-lock", lock_action(fx))

    message = str(caught.value)
    assert "saga 'locks', step 'take-lock'" in message
    assert "take_lock" in message  # the action whose annotation is at fault
    assert [s.name for s in base.steps] == ["first"]  # the builder is unchanged
    assert fx.log == []
    assert rt.store.list_executions() == []  # nothing started, nothing recorded


def test_an_s_step_with_an_unserializable_return_type_never_runs_and_earlier_steps_are_undone(
    rt: Runtime,
) -> None:
    fx = Effects()

    @saga(name="declares-lock")
    def declares_lock(s: SagaContext, event: None) -> None:
        s.step("first", fx.action("first"), compensate=fx.undo("first"))
        s.step("take-lock", lock_action(fx), compensate=fx.undo("lock"))

    ex = settle(rt, rt.start(declares_lock).id)

    assert fx.log == ["do:first", "undo:first"]  # the lock step's body never ran
    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None
    assert ex.error.type == "saga.errors.SagaCompensated"
    assert "take-lock" in ex.error.message
    assert "SerializationError" in ex.error.message
    names = [op.name for op in rt.store.load_operations(ex.id)]
    assert "take-lock" not in names  # nothing recorded for the refused step
    assert saga_status(rt, ex.id).not_undone == []


def test_result_type_overrides_an_unserializable_annotation_in_a_saga(rt: Runtime) -> None:
    @saga(name="typed-lock")
    def typed_lock(s: SagaContext, event: None) -> str:
        return s.step("named", lambda_lock, result_type=str)

    def lambda_lock(sc: StepContext) -> threading.Lock:
        return "not a lock after all"  # type: ignore[return-value]

    ex = settle(rt, rt.start(typed_lock).id)
    assert ex.status is ExecutionStatus.SUCCEEDED


def test_a_parallel_branch_with_an_unserializable_return_type_never_runs(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="parallel-lock")
    def parallel_lock(s: SagaContext, event: None) -> None:
        s.step("first", fx.action("first"), compensate=fx.undo("first"))
        s.parallel(
            "group",
            [
                s.branch("ok", fx.action("ok"), compensate=fx.undo("ok")),
                s.branch("lock", lock_action(fx)),
            ],
        )

    ex = settle(rt, rt.start(parallel_lock).id)

    assert fx.log == ["do:first", "undo:first"]  # no branch ran
    assert ex.error is not None
    assert "group/lock" in ex.error.message


@pytest.mark.parametrize("where", ["return", "event"])
def test_a_saga_whose_own_types_cannot_be_serialized_is_refused_at_decoration(
    where: str,
) -> None:
    def body(s: SagaContext, event: Any) -> Any:
        raise AssertionError("never runs")

    body.__annotations__ = {"s": SagaContext, where: threading.Lock}
    with pytest.raises(SerializationError, match="saga 'body'"):
        saga(body)


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_a_step_whose_value_cannot_be_recorded_is_compensated_as_uncertain(rt: Runtime) -> None:
    fx = Effects()
    seen: list[CompensationContext] = []

    def charge(sc: StepContext) -> int:
        fx.log.append("do:charge")
        return "charged-12"  # type: ignore[return-value] - the effect happened; the value is bad

    def refund(c: CompensationContext) -> None:
        seen.append(c)
        fx.log.append("undo:charge")

    @saga(name="bad-value")
    def bad_value(s: SagaContext, event: None) -> None:
        s.step("reserve", fx.action("reserve"), compensate=fx.undo("reserve"))
        s.step("charge", charge, compensate=refund, retry=ONCE)  # no compensate_uncertain
        s.step("ship", fx.action("ship"))

    ex = settle(rt, rt.start(bad_value).id)

    assert fx.log == ["do:reserve", "do:charge", "undo:charge", "undo:reserve"]
    (c,) = seen
    assert c.uncertain  # the undo learns it has no recorded value
    assert c.result is None
    assert c.error is not None
    assert c.error.type == "durable_core.errors.SerializationError"
    assert "step 'charge'" in c.error.message
    outcome = saga_status(rt, ex.id)
    assert [(x.step, x.uncertain) for x in outcome.compensations] == [
        ("charge", True),
        ("reserve", False),
    ]
    assert outcome.not_undone == []


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_a_parallel_branch_whose_value_cannot_be_recorded_is_compensated(rt: Runtime) -> None:
    fx = Effects()

    def charge(sc: StepContext) -> int:
        fx.log.append("do:charge")
        return "charged"  # type: ignore[return-value]

    @saga(name="bad-branch")
    def bad_branch(s: SagaContext, event: None) -> None:
        s.parallel(
            "group",
            [
                s.branch("hold", fx.action("hold"), compensate=fx.undo("hold")),
                s.branch("charge", charge, compensate=fx.undo("charge"), retry=ONCE),
            ],
        )

    settle(rt, rt.start(bad_branch).id)

    assert fx.count("do:charge") == 1
    assert sorted(fx.undone()) == ["undo:charge", "undo:hold"]


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_a_saga_result_that_cannot_be_recorded_rolls_the_saga_back(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="bad-result")
    def bad_result(s: SagaContext, event: None) -> int:
        s.step("reserve", fx.action("reserve"), compensate=fx.undo("reserve"))
        return "not a number"  # type: ignore[return-value]

    ex = settle(rt, rt.start(bad_result).id)

    assert fx.log == ["do:reserve", "undo:reserve"]  # not FAILED with the reservation held
    assert ex.error is not None
    assert ex.error.type == "saga.errors.SagaCompensated"
    assert "the result of saga 'bad-result'" in ex.error.message
    assert saga_status(rt, ex.id).not_undone == []
