"""Step kinds (compensatable, pivot, retriable), uncertain steps, and declaration errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import tenacity
from saga_helpers import Effects, names, settle

from durable_core import (
    DurableContext,
    ExecutionStatus,
    RetryPolicy,
    Runtime,
    StepContext,
)
from saga import (
    CompensationContext,
    Saga,
    SagaContext,
    SagaDefinitionError,
    SagaStatus,
    StepKind,
    saga,
    saga_status,
)

ONCE = RetryPolicy.no_retry()


def flaky(fx: Effects, name: str, failures: int, error: type[Exception] = ConnectionError) -> Any:
    def run(sc: StepContext) -> str:
        fx.log.append(f"do:{name}")
        if sc.attempt <= failures:
            raise error(f"{name} attempt {sc.attempt}")
        return f"{name}-ok"

    return run


# --- pivot and forward recovery ----------------------------------------------------------


def test_after_the_pivot_failures_are_retried_forward_never_compensated(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="pivoted")
    def pivoted(s: SagaContext, event: None) -> str:
        s.step("reserve", fx.action("reserve"), compensate=fx.undo("reserve"))
        s.step("charge", fx.action("charge"), kind=StepKind.PIVOT)
        # retriable by default after the pivot, even with a policy that would stop at 2
        s.step(
            "ship",
            flaky(fx, "ship", failures=7),
            retry=RetryPolicy(stop=tenacity.stop_after_attempt(2)),
        )
        return "shipped"

    ex = settle(rt, rt.start(pivoted).id)

    assert ex.status is ExecutionStatus.SUCCEEDED
    assert fx.count("do:ship") == 8
    assert fx.undone() == []
    assert saga_status(rt, ex.id).status is SagaStatus.COMPLETED


def test_an_error_after_the_pivot_that_is_not_retryable_fails_without_compensating(
    rt: Runtime,
) -> None:
    fx = Effects()

    @saga(name="stuck")
    def stuck(s: SagaContext, event: None) -> str:
        s.step("reserve", fx.action("reserve"), compensate=fx.undo("reserve"))
        s.step("charge", fx.action("charge"), kind="pivot")
        s.step(
            "ship",
            fx.action("ship", fail=True),
            retry=RetryPolicy(retry=tenacity.retry_if_not_exception_type(RuntimeError)),
        )
        return "shipped"

    ex = settle(rt, rt.start(stuck).id)

    assert ex.status is ExecutionStatus.FAILED
    assert fx.undone() == []
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.FAILED
    assert outcome.not_undone == ["reserve", "charge"]


def test_a_failing_pivot_rolls_back_the_steps_before_it(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="pivot-fails")
    def pivot_fails(s: SagaContext, event: None) -> None:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step("b", fx.action("b"), compensate=fx.undo("b"))
        s.step("p", fx.action("p", fail=True), kind=StepKind.PIVOT, retry=ONCE)

    ex = settle(rt, rt.start(pivot_fails).id)

    assert fx.undone() == ["undo:b", "undo:a"]
    assert saga_status(rt, ex.id).status is SagaStatus.COMPENSATED


def test_a_retriable_step_is_retried_until_it_succeeds(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="retriable")
    def retriable(s: SagaContext, event: None) -> str:
        result: str = s.step(
            "notify", flaky(fx, "notify", failures=4), kind=StepKind.RETRIABLE, retry=ONCE
        )
        return result

    ex = settle(rt, rt.start(retriable).id)

    assert ex.status is ExecutionStatus.SUCCEEDED
    assert fx.count("do:notify") == 5


# --- uncertain steps -----------------------------------------------------------------------


def test_compensate_uncertain_runs_the_undo_of_the_failed_step_first(rt: Runtime) -> None:
    seen: list[CompensationContext] = []
    fx = Effects()

    def undo_charge(c: CompensationContext) -> None:
        seen.append(c)
        fx.log.append("undo:charge")

    @saga(name="uncertain")
    def uncertain(s: SagaContext, event: None) -> None:
        s.step("reserve", fx.action("reserve"), compensate=fx.undo("reserve"))
        s.step(
            "charge",
            flaky(fx, "charge", failures=99, error=TimeoutError),
            compensate=undo_charge,
            compensate_uncertain=True,
            retry=RetryPolicy(stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_none()),
        )

    ex = settle(rt, rt.start(uncertain).id)

    assert fx.undone() == ["undo:charge", "undo:reserve"]
    (c,) = seen
    assert c.uncertain
    assert c.result is None
    assert c.error is not None
    assert c.error.type == "TimeoutError"
    assert c.forward_attempts == 2
    assert c.idempotency_key == f"{ex.id}:charge"
    outcome = saga_status(rt, ex.id)
    assert [(x.step, x.uncertain) for x in outcome.compensations] == [
        ("charge", True),
        ("reserve", False),
    ]


def test_without_compensate_uncertain_the_failed_step_is_not_undone(rt: Runtime) -> None:
    fx = Effects()

    @saga(name="certain")
    def certain(s: SagaContext, event: None) -> None:
        s.step("reserve", fx.action("reserve"), compensate=fx.undo("reserve"))
        s.step("charge", fx.action("charge", fail=True), compensate=fx.undo("charge"), retry=ONCE)

    settle(rt, rt.start(certain).id)

    assert fx.undone() == ["undo:reserve"]


# --- declaration errors in @saga: raised before the step, nothing recorded for it -----------


def run_declaring(rt: Runtime, declare: Callable[[SagaContext], object]) -> tuple[str, Effects]:
    fx = Effects()

    @saga(name="declares")
    def declares(s: SagaContext, event: None) -> None:
        s.step("first", fx.action("first"), compensate=fx.undo("first"))
        declare(s)

    ex = settle(rt, rt.start(declares).id)
    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None
    assert ex.error.type == "saga.errors.SagaDefinitionError"
    return ex.id, fx


def noop(sc: StepContext) -> None:
    return None


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda s: s.step("x", noop, compensate="not callable"), "compensate must be a callable"),
        (lambda s: s.step("x", 42), "action must be callable"),
        (lambda s: s.step("first", noop), "duplicate step name 'first'"),
        (lambda s: s.step("", noop), "non-empty string"),
        (lambda s: s.step("compensate:x", noop), "reserved"),
        (lambda s: s.step("a/b", noop), "reserved"),
        (lambda s: s.step("x", noop, kind="sideways"), "unknown step kind"),
        (lambda s: s.step("x", noop, compensate_uncertain=True), "needs compensate="),
        (
            lambda s: s.step("x", noop, kind=StepKind.PIVOT, compensate=print),
            "pivot cannot be undone",
        ),
        (
            lambda s: s.step("x", noop, kind=StepKind.RETRIABLE, compensate=print),
            "never compensated",
        ),
        (lambda s: s.step("x", noop, retry=3), "RetryPolicy"),
    ],
)
def test_a_bad_step_declaration_fails_the_saga_and_records_nothing_for_it(
    rt: Runtime, declare: Callable[[SagaContext], object], message: str
) -> None:
    eid, fx = run_declaring(rt, declare)

    assert message in (rt.get(eid).error.message if rt.get(eid).error else "")  # type: ignore[union-attr]
    assert names(rt.operations(eid)) == ["first"]
    assert fx.undone() == []  # a definition error never rolls back: the code is wrong


def test_a_compensatable_step_after_the_pivot_is_rejected_when_declared(rt: Runtime) -> None:
    def declare(s: SagaContext) -> None:
        s.step("pivot", noop, kind=StepKind.PIVOT)
        s.step("late", noop, compensate=print)

    eid, _ = run_declaring(rt, declare)

    error = rt.get(eid).error
    assert error is not None
    assert "compensatable step after the pivot 'pivot'" in error.message
    assert names(rt.operations(eid)) == ["first", "pivot"]
    assert saga_status(rt, eid).status is SagaStatus.FAILED


def test_a_second_pivot_is_rejected_when_declared(rt: Runtime) -> None:
    def declare(s: SagaContext) -> None:
        s.step("p1", noop, kind=StepKind.PIVOT)
        s.step("p2", noop, kind=StepKind.PIVOT)

    eid, _ = run_declaring(rt, declare)

    assert "already has a pivot ('p1')" in (rt.get(eid).error.message if rt.get(eid).error else "")  # type: ignore[union-attr]
    assert names(rt.operations(eid)) == ["first", "p1"]


def test_an_explicit_compensatable_kind_after_the_pivot_is_rejected(rt: Runtime) -> None:
    def declare(s: SagaContext) -> None:
        s.step("p", noop, kind=StepKind.PIVOT)
        s.step("late", noop, kind=StepKind.COMPENSATABLE)

    eid, _ = run_declaring(rt, declare)

    assert "after the pivot" in (rt.get(eid).error.message if rt.get(eid).error else "")  # type: ignore[union-attr]


# --- declaration errors in the builder: raised by .step() ----------------------------------


def b_action(sc: StepContext, event: Any, results: Any) -> None:
    return None


def b_undo(c: CompensationContext) -> None:
    return None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Saga("s").step("a", b_action).step("a", b_action), "duplicate step name 'a'"),
        (lambda: Saga("s").step("a", b_action, compensate=42), "compensate must be a callable"),  # type: ignore[arg-type]
        (lambda: Saga("s").step("a", "nope"), "action must be callable"),  # type: ignore[arg-type]
        (
            lambda: Saga("s").step("p", b_action, kind="pivot").step("q", b_action, kind="pivot"),
            "already has a pivot",
        ),
        (
            lambda: (
                Saga("s").step("p", b_action, kind="pivot").step("q", b_action, compensate=b_undo)
            ),
            "compensatable step after the pivot 'p'",
        ),
        (
            lambda: (
                Saga("s")
                .step("p", b_action, kind="pivot")
                .step("q", b_action, kind=StepKind.COMPENSATABLE)
            ),
            "after the pivot",
        ),
        (
            lambda: Saga("s").step("p", b_action, kind="pivot", compensate=b_undo),
            "cannot be undone",
        ),
        (lambda: Saga(""), "non-empty name"),
        (lambda: Saga("s", deadline=-1), "positive timedelta"),  # type: ignore[arg-type]
    ],
)
def test_the_builder_rejects_bad_definitions_at_definition_time(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(SagaDefinitionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_the_builder_makes_steps_after_the_pivot_retriable_and_never_mutates() -> None:
    base = Saga("s").step("a", b_action, compensate=b_undo)
    full = base.step("p", b_action, kind=StepKind.PIVOT).step("after", b_action)

    assert [(s.name, s.kind) for s in full.steps] == [
        ("a", StepKind.COMPENSATABLE),
        ("p", StepKind.PIVOT),
        ("after", StepKind.RETRIABLE),
    ]
    assert [s.name for s in base.steps] == ["a"]
    assert full.pivot == "p"


# --- @saga signature checks ----------------------------------------------------------------


def one_param(s: SagaContext) -> None:
    return None


def three_params(s: SagaContext, event: None, extra: int) -> None:
    return None


def durable_ctx(ctx: DurableContext, event: None) -> None:
    return None


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (one_param, "exactly two positional parameters"),
        (three_params, "exactly two positional parameters"),
        (durable_ctx, "receives a SagaContext, not a DurableContext"),
        (42, "needs a function"),
    ],
)
def test_saga_checks_the_signature_at_decoration_time(fn: Any, message: str) -> None:
    with pytest.raises(SagaDefinitionError, match=message):
        saga(fn)


def test_saga_rejects_a_bad_deadline_and_double_decoration() -> None:
    def body(s: SagaContext, event: None) -> None:
        return None

    with pytest.raises(SagaDefinitionError, match="positive timedelta"):
        saga(deadline=0)(body)  # type: ignore[call-overload]
    with pytest.raises(SagaDefinitionError, match="already a saga"):
        saga(saga(body))  # type: ignore[arg-type]
