"""Crash safety: a worker killed at any checkpoint boundary (forward or rollback) leaves the
same ledger as an uninterrupted run, and the always-replay mode changes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import tenacity
from saga_helpers import BOOKED, EXPECTED_ROLLBACK, Effects, settle

from durable_core import (
    ExecutionStatus,
    MemoryStore,
    RetryPolicy,
    Runtime,
    StepContext,
    StepSemantics,
)
from durable_core.errors import SimulatedCrash
from durable_core.testing import DurableTestRunner, TestResult, VirtualClock, check_crash_safety
from examples.tour_booking.providers import Tour, effects
from examples.tour_booking.saga import book_tour, book_tour_declared
from saga import CompensationContext, SagaContext, SagaStatus, saga, saga_status

EID = "crash-check"


def reset(ledger: Path) -> None:
    ledger.unlink(missing_ok=True)


@pytest.mark.parametrize("tour_saga", [book_tour, book_tour_declared], ids=["decorator", "builder"])
def test_tour_rollback_survives_a_crash_at_every_checkpoint(ledger: Path, tour_saga: Any) -> None:
    def check(result: TestResult) -> None:
        assert effects(EID) == EXPECTED_ROLLBACK["car"]

    report = check_crash_safety(
        tour_saga, Tour(fail_car=True), before_each=lambda: reset(ledger), check=check
    )

    report.assert_ok()
    described = "\n".join(report.writes)
    assert "compensate:book-hotel" in described  # the rollback's writes were crashed too
    assert "compensate:book-flight" in described
    assert len(report.boundaries) == 2 * len(report.writes) >= 12


def test_tour_success_survives_a_crash_at_every_checkpoint(ledger: Path) -> None:
    report = check_crash_safety(
        book_tour,
        Tour(),
        before_each=lambda: reset(ledger),
        check=lambda r: _assert_equal(effects(EID), BOOKED),
    )

    report.assert_ok()


def _assert_equal(found: object, expected: object) -> None:
    assert found == expected


def test_a_flaky_undo_and_an_operator_decision_survive_crashes() -> None:
    fx = Effects()
    exhausted = RetryPolicy(stop=tenacity.stop_after_attempt(2))

    @saga(name="flaky-undo")
    def flaky_undo(s: SagaContext, event: None) -> None:
        s.step("a", fx.action("a"), compensate=fx.undo("a", failures=2))
        s.step(
            "b",
            fx.action("b"),
            compensate=fx.undo("b", always_fail=True),
            compensation_retry=exhausted,
        )
        s.step("c", fx.action("c", fail=True), retry=RetryPolicy.no_retry())

    def check(result: TestResult) -> None:
        assert fx.undone() == ["undo:b", "undo:a"]  # b given up on (skipped), then a undone
        assert fx.count("undo:a") >= 3  # two failures, then the success

    report = check_crash_safety(
        flaky_undo,
        callbacks={"operator:b": {"action": "skip", "reason": "refund done by hand"}},
        before_each=fx.log.clear,
        check=check,
    )

    report.assert_ok()
    assert report.baseline.status is ExecutionStatus.FAILED
    assert report.baseline.error is not None
    assert report.baseline.error.type == "saga.errors.SagaPartiallyCompensated"


@pytest.mark.parametrize(
    ("tour", "status", "expected"),
    [
        (Tour(fail_car=True), ExecutionStatus.FAILED, EXPECTED_ROLLBACK["car"]),
        (Tour(), ExecutionStatus.SUCCEEDED, BOOKED),
    ],
)
def test_the_tour_passes_in_always_replay_mode(
    tour: Tour, status: ExecutionStatus, expected: list[tuple[str, str, str]]
) -> None:
    runner = DurableTestRunner(book_tour, always_replay=True)

    result = runner.run(tour, execution_id=EID)

    assert result.status is status
    assert effects(EID) == expected


def test_an_interrupted_at_most_once_step_is_undone_as_uncertain(clock: VirtualClock) -> None:
    store = MemoryStore()
    seen: list[CompensationContext] = []
    fx = Effects()

    def charge(sc: StepContext) -> str:
        fx.log.append("do:charge")
        raise SimulatedCrash("the process dies after the card was charged")

    def refund(c: CompensationContext) -> None:
        seen.append(c)
        fx.log.append("undo:charge")

    @saga(name="card")
    def card(s: SagaContext, event: None) -> None:
        s.step("reserve", fx.action("reserve"), compensate=fx.undo("reserve"))
        s.step(
            "charge",
            charge,
            compensate=refund,
            compensate_uncertain=True,
            semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
            retry=RetryPolicy.no_retry(),
        )

    first = Runtime(store, clock=clock)
    with pytest.raises(SimulatedCrash):
        first.run(card, execution_id="card-1")
    clock.advance(timedelta(minutes=5))  # the dead worker's lease expires
    ex = settle(Runtime(store, clock=clock, functions=[card]), "card-1")

    assert fx.log == ["do:reserve", "do:charge", "undo:charge", "undo:reserve"]
    (c,) = seen
    assert c.uncertain
    assert c.error is not None
    assert c.error.type.endswith("StepInterruptedError")
    outcome = saga_status(Runtime(store, clock=clock), ex.id)
    assert outcome.status is SagaStatus.COMPENSATED
