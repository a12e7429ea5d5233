"""Saga step and compensation timeouts: a hung action or undo never holds the saga.

Hung bodies wait on an event the test sets at the end; the timeouts are tiny real
durations (a body runs in real time, also under the virtual clock), and retry delays are
skipped on the virtual clock by ``settle``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import tenacity
from saga_helpers import Effects, settle

from durable_core import ExecutionStatus, RetryPolicy, Runtime, StepContext
from saga import (
    CompensationContext,
    Saga,
    SagaContext,
    SagaDefinitionError,
    SagaStatus,
    saga,
    saga_status,
)

TINY = timedelta(seconds=0.05)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def hung_first(fx: Effects, name: str, release: threading.Event) -> Callable[[StepContext], str]:
    """An action whose first attempt hangs until ``release``; later attempts return."""

    def run(sc: StepContext) -> str:
        fx.log.append(f"do:{name}")
        if sc.attempt == 1:
            release.wait()
            fx.log.append(f"late:{name}")
        return f"{name}-ok-{sc.attempt}"

    return run


def test_a_hung_step_times_out_and_its_next_attempt_lets_the_saga_go_on(
    rt: Runtime, release: threading.Event
) -> None:
    fx = Effects()

    @saga(name="hung-step")
    def trip(s: SagaContext, event: None) -> str:
        s.step("flight", fx.action("flight"), compensate=fx.undo("flight"))
        return s.step(
            "hotel", hung_first(fx, "hotel", release), compensate=fx.undo("hotel"), timeout=TINY
        )

    ex = settle(rt, rt.start(trip, None, execution_id="t1").id)

    assert ex.status is ExecutionStatus.SUCCEEDED
    assert rt.result("t1") == "hotel-ok-2"
    assert fx.log == ["do:flight", "do:hotel", "do:hotel"]
    assert saga_status(rt, "t1").status is SagaStatus.COMPLETED


def test_a_step_that_keeps_hanging_fails_for_good_and_the_saga_compensates(
    rt: Runtime, release: threading.Event
) -> None:
    fx = Effects()

    def always_hangs(sc: StepContext) -> str:
        fx.log.append("do:hotel")
        release.wait()
        return "late"

    twice = RetryPolicy(stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_none())
    trip = (
        Saga("hung-builder", function_name="hung-builder")
        .step("flight", lambda sc, e, r: "f", compensate=fx.undo("flight"))
        .step("hotel", lambda sc, e, r: always_hangs(sc), retry=twice, timeout=TINY)
    )
    rt.register(trip)

    ex = settle(rt, rt.start(trip, None, execution_id="t2").id)

    assert ex.status is ExecutionStatus.FAILED
    assert fx.log == ["do:hotel", "do:hotel", "undo:flight"]
    status = saga_status(rt, "t2")
    assert status.status is SagaStatus.COMPENSATED
    assert status.compensated == ["flight"]
    assert ex.error is not None and "StepTimeoutError" in ex.error.message


def test_an_uncertain_timed_out_step_is_undone_with_the_timeout_as_its_error(
    rt: Runtime, release: threading.Event
) -> None:
    seen: list[tuple[bool, str | None]] = []

    def undo(c: CompensationContext) -> None:
        seen.append((c.uncertain, c.error.type if c.error else None))

    @saga(name="uncertain")
    def pay(s: SagaContext, event: None) -> None:
        s.step(
            "charge",
            lambda sc: release.wait(),
            compensate=undo,
            compensate_uncertain=True,
            retry=RetryPolicy.no_retry(),
            timeout=TINY,
        )

    ex = settle(rt, rt.start(pay, None, execution_id="t3").id)

    assert ex.status is ExecutionStatus.FAILED
    assert seen == [(True, "durable_core.errors.StepTimeoutError")]


def test_a_hung_compensation_times_out_and_is_retried(
    rt: Runtime, release: threading.Event
) -> None:
    fx = Effects()

    def undo_hangs_once(c: CompensationContext) -> str:
        fx.log.append(f"undo:flight#{c.attempt}")
        if c.attempt == 1:
            release.wait()
        return "refunded"

    @saga(name="hung-undo")
    def trip(s: SagaContext, event: None) -> None:
        s.step("flight", fx.action("flight"), compensate=undo_hangs_once, compensation_timeout=TINY)
        s.step("hotel", fx.action("hotel", fail=True), retry=RetryPolicy.no_retry())

    ex = settle(rt, rt.start(trip, None, execution_id="t4").id)

    assert ex.status is ExecutionStatus.FAILED
    assert fx.log == ["do:flight", "do:hotel", "undo:flight#1", "undo:flight#2"]
    status = saga_status(rt, "t4")
    assert status.status is SagaStatus.COMPENSATED
    assert status.compensated == ["flight"]


def test_a_hung_parallel_branch_times_out_and_is_retried(
    rt: Runtime, release: threading.Event
) -> None:
    fx = Effects()

    @saga(name="hung-branch")
    def trip(s: SagaContext, event: None) -> list[str]:
        return s.parallel(
            "book",
            [
                s.branch("car", fx.action("car"), compensate=fx.undo("car")),
                s.branch(
                    "bus",
                    hung_first(fx, "bus", release),
                    compensate=fx.undo("bus"),
                    timeout=TINY,
                    compensation_timeout=TINY,
                ),
            ],
        )

    ex = settle(rt, rt.start(trip, None, execution_id="t5").id)

    assert ex.status is ExecutionStatus.SUCCEEDED
    assert rt.result("t5") == ["car-result", "bus-ok-2"]
    assert fx.count("do:bus") == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": timedelta(0)}, r"step 'charge'.*timeout=.*out of range"),
        ({"timeout": timedelta(days=400)}, r"step 'charge'.*timeout=.*365 days"),
        ({"timeout": 5}, r"step 'charge'.*timeout=5.*timedelta"),
        (
            {"compensation_timeout": timedelta(seconds=-1)},
            r"step 'charge'.*compensation_timeout=.*out of range",
        ),
        ({"compensation_timeout": TINY, "compensate": None}, "compensation_timeout= needs"),
    ],
)
def test_a_bad_timeout_is_refused_naming_the_step_and_nothing_is_recorded(
    rt: Runtime, options: dict[str, Any], message: str
) -> None:
    fx = Effects()
    kwargs: dict[str, Any] = {"compensate": fx.undo("charge"), **options}

    @saga(name="bad-timeout")
    def pay(s: SagaContext, event: None) -> None:
        s.step("charge", fx.action("charge"), **kwargs)

    ex = settle(rt, rt.start(pay, None, execution_id="bad").id)

    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None and ex.error.type.endswith("SagaDefinitionError")
    assert __import__("re").search(message, ex.error.message), ex.error.message
    assert fx.log == []
    assert rt.operations("bad") == []
    with pytest.raises(SagaDefinitionError, match=message):
        Saga("b").step("charge", lambda sc, e, r: None, **kwargs)


def test_the_uncertain_undo_of_a_step_a_cancel_stopped_keeps_its_timeout(
    rt: Runtime, release: threading.Event
) -> None:
    """A step cancelled while it waits to retry registers its uncertain undo with the same
    ``compensation_timeout`` as any other: a hung first attempt of it is abandoned."""
    fx = Effects()
    hourly = RetryPolicy(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_fixed(3600))

    def undo_hangs_once(c: CompensationContext) -> str:
        fx.log.append(f"undo:card#{c.attempt}:{c.uncertain}:{c.error.type if c.error else None}")
        if c.attempt == 1:
            release.wait()
        return "voided"

    @saga(name="cancel-uncertain")
    def pay(s: SagaContext, event: None) -> None:
        s.step(
            "card",
            fx.action("card", fail=True),
            retry=hourly,
            compensate=undo_hangs_once,
            compensate_uncertain=True,
            compensation_timeout=TINY,
        )

    ex = rt.run(pay, None, execution_id="t6")
    assert ex.status is ExecutionStatus.RUNNING  # the card waits an hour to retry
    rt.cancel("t6", "customer called")
    ex = settle(rt, "t6")

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.log == [
        "do:card",
        "undo:card#1:True:durable_core.Cancelled",
        "undo:card#2:True:durable_core.Cancelled",
    ]
    assert saga_status(rt, "t6").status is SagaStatus.COMPENSATED
