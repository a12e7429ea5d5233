"""Async sagas under crashes, replay, cancel, the deadline, terminate and operators: the
same rules as the sync saga (each effect and each compensation lands once; a compensation
that keeps failing parks the saga until an operator decides through saga.operator)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import tenacity
from saga_async_flows import book_flight, book_hotel, cancel_flight, cancel_hotel, process_order
from saga_async_flows import book_tour as async_book_tour
from saga_helpers import BOOKED, EXPECTED_ROLLBACK, Effects, settle

from durable_core import ExecutionStatus, RetryPolicy, Runtime, SQLiteStore
from durable_core.testing import (
    CallbackFailure,
    DurableTestRunner,
    TestResult,
    VirtualClock,
    check_crash_safety,
)
from examples.order_processing.services import Order
from examples.order_processing.services import effects as order_effects
from examples.tour_booking.providers import Tour, book_car
from examples.tour_booking.providers import effects as tour_effects
from saga import (
    AsyncSagaContext,
    CompensationContext,
    SagaFunction,
    SagaStatus,
    resolve,
    retry_compensation,
    saga,
    saga_status,
    skip_compensation,
    terminate,
)
from saga.cli import main as durable_saga

EID = "crash-check"
ONCE = RetryPolicy.no_retry()
FORWARD = ["payments/charge", "inventory/reserve", "mail/confirmation", "shipping/pickup"]
ROLLBACK = ["shipping/cancel-pickup", "mail/cancellation", "inventory/release", "payments/refund"]


def landed(execution_id: str) -> list[str]:
    return [f"{service}/{action}" for service, action, _ in order_effects(execution_id)]


def _expect(found: object, expected: object) -> None:
    assert found == expected


# --- crashes and replay --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tour", "expected"),
    [(Tour(fail_car=True), EXPECTED_ROLLBACK["car"]), (Tour(), BOOKED)],
    ids=["rollback", "success"],
)
def test_the_async_tour_survives_a_crash_at_every_checkpoint(
    ledger: Path, tour: Tour, expected: list[tuple[str, str, str]]
) -> None:
    report = check_crash_safety(
        async_book_tour,
        tour,
        before_each=lambda: ledger.unlink(missing_ok=True),
        check=lambda r: _expect(tour_effects(EID), expected),
    )

    report.assert_ok()
    assert len(report.boundaries) == 2 * len(report.writes) >= 6


def test_the_async_order_rollback_survives_a_crash_at_every_checkpoint(ledger: Path) -> None:
    order_ledger = ledger.parent / "order_ledger.sqlite3"
    report = check_crash_safety(
        process_order,
        Order(),
        callbacks={"shipper-confirmation": CallbackFailure("no truck")},
        before_each=lambda: order_ledger.unlink(missing_ok=True),
        check=lambda r: _expect(landed(EID), FORWARD + ROLLBACK),
    )

    report.assert_ok()
    described = "\n".join(report.writes)
    assert "compensate:charge-payment" in described  # the rollback's writes were crashed too


@saga(name="parallel_tour")
async def parallel_tour(s: AsyncSagaContext, tour: Tour) -> None:
    """Flight and hotel at once, then the car (which fails): both bookings are undone."""
    await s.parallel(
        "stay",
        [
            s.branch("book-flight", book_flight, tour, compensate=cancel_flight),
            s.branch("book-hotel", book_hotel, tour, compensate=cancel_hotel),
        ],
    )
    await s.step("book-car", book_car, tour, retry=ONCE)


def test_an_async_parallel_rollback_survives_a_crash_at_every_checkpoint(ledger: Path) -> None:
    def check(result: TestResult) -> None:
        done = tour_effects(EID)
        assert sorted(done[:2]) == [
            ("airline", "book", "stay/book-flight"),
            ("hotel", "book", "stay/book-hotel"),
        ]  # the branches in either order
        assert done[2:] == [
            ("cars", "reject", "book-car"),
            ("hotel", "cancel", "stay/book-hotel"),  # in reverse branch order
            ("airline", "cancel", "stay/book-flight"),
        ]

    report = check_crash_safety(
        parallel_tour,
        Tour(fail_car=True),
        before_each=lambda: ledger.unlink(missing_ok=True),
        check=check,
    )

    report.assert_ok()
    assert report.baseline.status is ExecutionStatus.FAILED


def test_a_flaky_async_undo_and_an_operator_decision_survive_crashes() -> None:
    fx = Effects()
    exhausted = RetryPolicy(stop=tenacity.stop_after_attempt(2))

    async def undo_a(c: CompensationContext) -> str:
        result: str = fx.undo("a", failures=2)(c)
        return result

    @saga(name="flaky-undo")
    async def flaky_undo(s: AsyncSagaContext, event: None) -> None:
        await s.step("a", fx.action("a"), compensate=undo_a)
        await s.step(
            "b",
            fx.action("b"),
            compensate=fx.undo("b", always_fail=True),
            compensation_retry=exhausted,
        )
        await s.step("c", fx.action("c", fail=True), retry=ONCE)

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
    assert report.baseline.error is not None
    assert report.baseline.error.type == "saga.errors.SagaPartiallyCompensated"


@pytest.mark.parametrize("tour", [Tour(fail_car=True), Tour()], ids=["rollback", "success"])
def test_the_async_tour_passes_in_always_replay_mode(tour: Tour) -> None:
    normal = DurableTestRunner(async_book_tour).run(tour, execution_id="normal")

    result = DurableTestRunner(async_book_tour, always_replay=True).run(tour, execution_id=EID)

    assert result.status is normal.status
    assert tour_effects(EID) == [(p, a, step) for p, a, step in tour_effects("normal")]


# --- cancel, deadline, terminate, an operator's fail -------------------------------------


def test_cancel_while_suspended_on_a_callback_rolls_the_async_saga_back() -> None:
    runner = DurableTestRunner(process_order)
    waiting = runner.run(Order(), execution_id="order-1")
    assert waiting.status is ExecutionStatus.RUNNING  # waits for the shipper

    runner.cancel("the customer changed their mind")
    result = runner.resume()

    assert result.status is ExecutionStatus.CANCELLED
    assert landed("order-1") == FORWARD + ROLLBACK
    outcome = saga_status(runner.runtime, "order-1")
    assert outcome.status is SagaStatus.COMPENSATED
    assert outcome.cause is not None
    assert (outcome.cause.kind, outcome.cause.message) == (
        "cancelled",
        "the customer changed their mind",
    )


def _waiting(fx: Effects, *, deadline: timedelta | None = None) -> SagaFunction[None, str]:
    """a, b, then wait for an approval callback (no timeout of its own), then c."""

    @saga(name="approval", deadline=deadline)
    async def approval(s: AsyncSagaContext, event: None) -> str:
        await s.step("a", fx.action("a"), compensate=fx.undo("a"))
        await s.step("b", fx.action("b"), compensate=fx.undo("b"))
        approved = await s.ctx.create_callback("approval")
        await approved.result()
        await s.step("c", fx.action("c"), compensate=fx.undo("c"))
        return "done"

    return approval


def test_the_deadline_while_suspended_on_a_callback_rolls_the_async_saga_back(
    rt: Runtime, clock: VirtualClock
) -> None:
    fx = Effects()
    started = clock.now()

    ex = settle(rt, rt.start(_waiting(fx, deadline=timedelta(hours=1))).id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.log == ["do:a", "do:b", "undo:b", "undo:a"]
    assert clock.now() - started == timedelta(hours=1)
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPENSATED
    assert outcome.cause is not None and outcome.cause.kind == "deadline"


def test_terminate_ends_a_waiting_async_saga_without_compensation(rt: Runtime) -> None:
    fx = Effects()
    ex = settle(rt, rt.start(_waiting(fx)).id)
    assert ex.status is ExecutionStatus.RUNNING

    terminate(rt, ex.id, "fraud: keep everything as it is", actor="ops")
    ex = settle(rt, ex.id)

    assert ex.status is ExecutionStatus.CANCELLED
    assert fx.log == ["do:a", "do:b"]
    outcome = saga_status(rt, ex.id)
    assert outcome.not_undone == ["a", "b"]


def test_an_operators_fail_of_an_async_saga_parked_by_a_code_change_rolls_it_back() -> None:
    fx = Effects()
    code = {"pause": "pause"}

    @saga(name="changed")
    async def changed(s: AsyncSagaContext, event: None) -> str:
        await s.step("flight", fx.action("flight"), compensate=fx.undo("flight"))
        await s.step("hotel", fx.action("hotel"), compensate=fx.undo("hotel"))
        await s.ctx.wait(code["pause"], timedelta(hours=1))
        await s.step("car", fx.action("car"), compensate=fx.undo("car"))
        return "booked"

    runner = DurableTestRunner(changed)
    assert runner.run(None, skip_time=False).status is ExecutionStatus.RUNNING
    code["pause"] = "renamed-pause"  # a deploy changed the code under the waiting saga
    parked = runner.resume()
    assert parked.error is not None and "NonDeterminismError" in parked.error.type

    Runtime(runner.store, clock=runner.clock).fail(runner.execution_id, "abandoned", actor="ops")
    result = runner.resume()

    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and result.error.type == "saga.errors.SagaCompensated"
    assert fx.log == ["do:flight", "do:hotel", "undo:hotel", "undo:flight"]


# --- a compensation that keeps failing: parked for an operator -----------------------------


def _parking(fx: Effects, broken: dict[str, bool]) -> SagaFunction[None, None]:
    """a, b (its async undo fails while ``broken["b"]``: the saga parks), c fails."""

    async def undo_b(c: CompensationContext) -> str:
        fx.log.append("undo:b")
        if broken["b"]:
            raise ConnectionError("the hotel's cancellation API is down")
        return "undid b"

    @saga(name="parking")
    async def parking(s: AsyncSagaContext, event: None) -> None:
        await s.step("a", fx.action("a"), compensate=fx.undo("a"))
        await s.step("b", fx.action("b"), compensate=undo_b, compensation_retry=ONCE)
        await s.step("c", fx.action("c", fail=True), retry=ONCE)

    return parking


@pytest.mark.parametrize("decision", ["retry", "skip", "resolve"])
def test_a_parked_async_saga_is_resumed_by_an_operator(
    rt: Runtime, store: Any, clock: VirtualClock, decision: str
) -> None:
    fx = Effects()
    broken = {"b": True}
    eid = settle(rt, rt.start(_parking(fx, broken)).id).id
    parked = saga_status(rt, eid)
    assert parked.status is SagaStatus.COMPENSATION_FAILED
    assert parked.not_undone == ["b", "a"]
    assert fx.log == ["do:a", "do:b", "do:c", "undo:b"]

    broken["b"] = False
    if decision == "retry":
        retry_compensation(rt, eid, actor="ops")
    elif decision == "skip":
        skip_compensation(rt, eid, "refunded by hand", actor="ops")
    else:
        resolve(rt, eid, "the hotel confirmed by phone", actor="ops")
    ex = settle(rt, eid)

    assert ex.status is ExecutionStatus.FAILED
    outcome = saga_status(rt, eid)
    if decision == "retry":
        assert fx.log[4:] == ["undo:b", "undo:a"]
        assert outcome.status is SagaStatus.COMPENSATED
    elif decision == "skip":
        assert fx.log[4:] == ["undo:a"]
        assert outcome.status is SagaStatus.PARTIALLY_COMPENSATED
        assert ex.error is not None
        assert ex.error.type == "saga.errors.SagaPartiallyCompensated"
    else:
        assert fx.log[4:] == ["undo:a"]
        assert outcome.status is SagaStatus.COMPENSATED
    assert [a.actor for a in outcome.operator_actions] == ["ops"]


def test_durable_saga_status_shows_a_parked_async_saga(
    tmp_path: Path, clock: VirtualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    fx = Effects()
    path = tmp_path / "durable.sqlite3"
    rt = Runtime(SQLiteStore(path), clock=clock)
    eid = settle(rt, rt.start(_parking(fx, {"b": True})).id).id
    rt.store.close()

    code = durable_saga(["--store", str(path), "status", eid])

    shown = capsys.readouterr().out
    assert code == 0
    assert "status: COMPENSATION_FAILED" in shown
    assert "PARKED: the undo of 'b'" in shown
    assert "NOT UNDONE: b, a" in shown
