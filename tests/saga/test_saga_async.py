"""Async sagas (``@saga async def``, ``await s.step``): the same journal as the same saga
written sync, so a journal written by one replays under the other; async compensations
once each in reverse order; parallel groups and nested sagas; what runs where."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from saga_async_flows import book_tour, comparable, named_as, process_order
from saga_helpers import EXPECTED_ROLLBACK, Effects, names, settle

import examples.order_processing.saga as sync_order
import examples.tour_booking.saga as sync_tour
from durable_core import (
    ExecutionStatus,
    MemoryStore,
    RetryPolicy,
    Runtime,
    StepContext,
)
from durable_core.testing import CallbackFailure, DurableTestRunner, VirtualClock
from examples.order_processing.services import Item, Order
from examples.order_processing.services import effects as order_effects
from examples.tour_booking.providers import Tour, ledger_rows
from examples.tour_booking.providers import effects as tour_effects
from saga import (
    AsyncSagaContext,
    CompensationContext,
    SagaContext,
    SagaDefinition,
    SagaFunction,
    SagaStatus,
    retry_compensation,
    saga,
    saga_status,
)

EID = "same-id"
ONCE = RetryPolicy.no_retry()
SHIPPED = {"tracking": "VNP-1"}


def journal_of(
    fn: Any, event: Any, monkeypatch: pytest.MonkeyPatch, ledger: Path, **runner: Any
) -> tuple[list[tuple[Any, ...]], Any]:
    """Run ``fn`` to its end with its own ledger files; its journal and its runner's result."""
    monkeypatch.setenv("TOUR_LEDGER", str(ledger))
    monkeypatch.setenv("ORDER_LEDGER", str(ledger.with_suffix(".orders")))
    result = DurableTestRunner(fn, **runner).run(event, execution_id=EID)
    return [comparable(op.record) for op in result.operations], result


def landed() -> list[str]:
    """What reached the order services (the pickup's detail holds the random token)."""
    return [f"{service}/{action}" for service, action, _ in order_effects(EID)]


# --- the same journal ----------------------------------------------------------------------


@pytest.mark.parametrize("failing", [None, "flight", "hotel", "car"])
def test_the_async_tour_writes_the_journal_of_the_sync_tour(
    failing: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tour = Tour.model_validate({f"fail_{failing}": True} if failing else {})

    sync_journal, sync_result = journal_of(
        sync_tour.book_tour, tour, monkeypatch, tmp_path / "sync"
    )
    sync_landed = tour_effects(EID)
    async_journal, async_result = journal_of(book_tour, tour, monkeypatch, tmp_path / "async")

    assert async_journal == sync_journal
    assert tour_effects(EID) == sync_landed
    assert async_result.status is sync_result.status
    if failing == "car":
        assert [n[4] for n in async_journal][-3:] == [
            "saga:rollback",
            "compensate:book-hotel",
            "compensate:book-flight",
        ]
        assert tour_effects(EID) == EXPECTED_ROLLBACK["car"]


@pytest.mark.parametrize("shipper", ["confirms", "fails", "out-of-stock"])
def test_the_async_order_writes_the_journal_of_the_sync_order(
    shipper: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    order = Order()
    answer: Any = SHIPPED
    if shipper == "fails":
        answer = CallbackFailure("no truck", error_type="NoPickup")
    if shipper == "out-of-stock":
        order = Order(items=[Item(sku="pho-kit", qty=1, unit_price=9.5)])
    callbacks = {"shipper-confirmation": answer}

    sync_journal, sync_result = journal_of(
        sync_order.process_order, order, monkeypatch, tmp_path / "sync", callbacks=callbacks
    )
    sync_landed = landed()
    async_journal, async_result = journal_of(
        process_order, order, monkeypatch, tmp_path / "async", callbacks=callbacks
    )

    assert async_journal == sync_journal
    assert landed() == sync_landed
    assert async_result.status is sync_result.status
    assert async_result.result == sync_result.result


@pytest.mark.parametrize(
    ("first", "then"),
    [
        (sync_order.process_order, process_order),
        (process_order, sync_order.process_order),
    ],
    ids=["sync-then-async", "async-then-sync"],
)
def test_an_order_started_by_one_surface_is_finished_by_the_other(
    first: SagaDefinition[Any, Any], then: SagaDefinition[Any, Any]
) -> None:
    store, clock = MemoryStore(), VirtualClock()
    starting = DurableTestRunner(first, store=store, clock=clock)
    waiting = starting.run(Order(), execution_id=EID)
    assert waiting.status is ExecutionStatus.RUNNING  # waits for the shipper
    starting.send_callback_success("shipper-confirmation", SHIPPED)

    finishing = DurableTestRunner(named_as(then, first), store=store, clock=clock)
    done = finishing.resume(execution_id=EID)

    assert done.status is ExecutionStatus.SUCCEEDED
    assert done.result.tracking == "VNP-1"
    assert landed() == [
        "payments/charge",
        "inventory/reserve",
        "mail/confirmation",
        "shipping/pickup",
    ]


def test_a_rollback_parked_under_the_sync_saga_is_finished_by_the_async_one(
    rt: Runtime, store: Any, clock: VirtualClock
) -> None:
    fx = Effects()
    broken = {"b": True}

    def undo_b(c: CompensationContext) -> None:
        fx.log.append("undo:b")
        if broken["b"]:
            raise ConnectionError("the hotel's cancellation API is down")

    @saga(name="flip")
    def flip_sync(s: SagaContext, event: None) -> None:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        s.step("b", fx.action("b"), compensate=undo_b, compensation_retry=ONCE)
        s.step("c", fx.action("c", fail=True), retry=ONCE)

    @saga(name="flip")
    async def flip_async(s: AsyncSagaContext, event: None) -> None:
        await s.step("a", fx.action("a"), compensate=fx.undo("a"))
        await s.step("b", fx.action("b"), compensate=undo_b, compensation_retry=ONCE)
        await s.step("c", fx.action("c", fail=True), retry=ONCE)

    eid = settle(rt, rt.start(flip_sync).id).id
    assert saga_status(rt, eid).status is SagaStatus.COMPENSATION_FAILED  # parked on b's undo

    broken["b"] = False
    async_rt = Runtime(store, clock=clock, functions=[flip_async])
    retry_compensation(async_rt, eid, actor="ops")
    ex = settle(async_rt, eid)

    assert ex.status is ExecutionStatus.FAILED
    assert fx.log == ["do:a", "do:b", "do:c", "undo:b", "undo:b", "undo:a"]
    assert saga_status(async_rt, eid).status is SagaStatus.COMPENSATED


# --- async compensations, and what runs where ----------------------------------------------


def test_async_compensations_run_once_each_in_reverse_order(rt: Runtime) -> None:
    ex = settle(rt, rt.start(book_tour, Tour(fail_car=True)).id)

    assert ex.status is ExecutionStatus.FAILED
    assert ex.error is not None and ex.error.type == "saga.errors.SagaCompensated"
    assert tour_effects(ex.id) == EXPECTED_ROLLBACK["car"]
    assert not any(r.duplicate for r in ledger_rows(ex.id))
    outcome = saga_status(rt, ex.id)
    assert outcome.status is SagaStatus.COMPENSATED
    assert outcome.cause is not None and outcome.cause.step == "book-car"
    assert [c.step for c in outcome.compensations] == ["book-hotel", "book-flight"]
    assert all(c.status == "compensated" and c.attempts == 1 for c in outcome.compensations)


def test_async_bodies_run_on_the_loop_and_sync_ones_on_a_thread(rt: Runtime) -> None:
    where: dict[str, bool] = {}

    def on_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    async def async_action(sc: StepContext) -> str:
        where["async action"] = on_loop()
        return "a"

    def sync_action(sc: StepContext) -> str:
        where["sync action"] = on_loop()
        where["sync action thread"] = threading.current_thread() is threading.main_thread()
        return "b"

    async def async_undo(c: CompensationContext) -> None:
        where["async undo"] = on_loop()

    def sync_undo(c: CompensationContext) -> None:
        where["sync undo"] = on_loop()

    @saga(name="where")
    async def where_saga(s: AsyncSagaContext, event: None) -> None:
        await s.step("a", async_action, compensate=async_undo)
        await s.step("b", sync_action, compensate=sync_undo)
        await s.step("c", Effects().action("c", fail=True), retry=ONCE)

    ex = settle(rt, rt.start(where_saga).id)

    assert ex.status is ExecutionStatus.FAILED
    assert where == {
        "async action": True,
        "sync action": False,
        "sync action thread": False,
        "async undo": True,
        "sync undo": False,
    }


def test_an_async_action_past_its_timeout_is_cancelled_and_the_saga_rolls_back(
    rt: Runtime,
) -> None:
    fx = Effects()
    seen: list[str] = []

    async def slow(sc: StepContext) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "never"

    @saga(name="slow")
    async def slow_saga(s: AsyncSagaContext, event: None) -> None:
        await s.step("a", fx.action("a"), compensate=fx.undo("a"))
        await s.step("slow", slow, timeout=timedelta(milliseconds=50), retry=ONCE)

    ex = settle(rt, rt.start(slow_saga).id)

    assert ex.status is ExecutionStatus.FAILED
    assert seen == ["cancelled"]
    assert fx.undone() == ["undo:a"]
    outcome = saga_status(rt, ex.id)
    assert outcome.cause is not None and outcome.cause.error_type.endswith("StepTimeoutError")


# --- parallel groups and nested sagas ------------------------------------------------------


def _parallel(fx: Effects, *, is_async: bool) -> SagaFunction[None, list[str]]:
    """a; then [x, y, z] in parallel (y fails for good); x and z, then a, are undone."""

    def branches(s: Any) -> list[Any]:
        return [
            s.branch("x", fx.action("x"), compensate=fx.undo("x")),
            s.branch("y", fx.action("y", fail=True), compensate=fx.undo("y"), retry=ONCE),
            s.branch("z", fx.action("z"), compensate=fx.undo("z")),
        ]

    if is_async:

        @saga(name="group")
        async def group_async(s: AsyncSagaContext, event: None) -> list[str]:
            await s.step("a", fx.action("a"), compensate=fx.undo("a"))
            return await s.parallel("trio", branches(s))

        return group_async

    @saga(name="group")
    def group_sync(s: SagaContext, event: None) -> list[str]:
        s.step("a", fx.action("a"), compensate=fx.undo("a"))
        return s.parallel("trio", branches(s))

    return group_sync


def test_async_parallel_branches_are_compensated_once_each_as_the_sync_ones_are() -> None:
    journals, logs = [], []
    for is_async in (False, True):
        fx = Effects()
        result = DurableTestRunner(_parallel(fx, is_async=is_async)).run(None, execution_id=EID)
        assert result.status is ExecutionStatus.FAILED
        journals.append(sorted(comparable(op.record) for op in result.operations))
        logs.append(sorted(fx.log[1:4]) + fx.log[4:])  # the branches ran in any order

    assert journals[1] == journals[0]  # the same records (written in finishing order)
    assert logs[1] == logs[0] == ["do:x", "do:y", "do:z", "undo:z", "undo:x", "undo:a"]


def _trip(fx: Effects) -> SagaFunction[str, str]:
    @saga(name="trip")
    async def trip(s: AsyncSagaContext, city: str) -> str:
        await s.step("flight", fx.action("flight"), compensate=fx.undo("flight"))
        await s.step("hotel", fx.action("hotel"), compensate=fx.undo("hotel"))
        return f"trip to {city}"

    return trip


def test_a_nested_async_saga_is_compensated_as_a_unit_in_reverse(rt: Runtime) -> None:
    fx = Effects()
    trip = _trip(fx)

    @saga(name="parent")
    async def parent(s: AsyncSagaContext, event: None) -> str:
        await s.step("deposit", fx.action("deposit"), compensate=fx.undo("deposit"))
        result: str = await s.child("trip", trip, "Da Nang")
        fx.log.append("stack:" + ",".join(s.undo_stack))
        await s.step("insurance", fx.action("insurance", fail=True), retry=ONCE)
        return result

    ex = settle(rt, rt.start(parent).id)

    assert ex.status is ExecutionStatus.FAILED
    assert "stack:deposit,trip/flight,trip/hotel" in fx.log
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


def _everything(fx: Effects, *, is_async: bool) -> SagaFunction[bool, str]:
    """A nested saga, a parallel group, an undo that parks (an operator skips it), and a
    pivot with a retriable step after it: the same declarations on either surface."""
    skip_me = fx.undo("deposit", always_fail=True)

    @saga(name="trip")
    def trip_sync(s: SagaContext, city: str) -> str:
        s.step("flight", fx.action("flight"), compensate=fx.undo("flight"))
        return city

    @saga(name="trip")
    async def trip_async(s: AsyncSagaContext, city: str) -> str:
        await s.step("flight", fx.action("flight"), compensate=fx.undo("flight"))
        return city

    def extras(s: Any) -> list[Any]:
        return [
            s.branch("x", fx.action("x"), compensate=fx.undo("x")),
            s.branch("y", fx.action("y"), compensate=fx.undo("y")),
        ]

    @saga(name="everything")
    def everything_sync(s: SagaContext, fail: bool) -> str:
        s.step("deposit", fx.action("deposit"), compensate=skip_me, compensation_retry=ONCE)
        city: str = s.child("trip", trip_sync, "Hue")
        s.parallel("extras", extras(s))
        s.step("check", fx.action("check", fail=fail), retry=ONCE)
        s.step("charge", fx.action("charge"), kind="pivot")
        s.step("notify", fx.action("notify"))
        return city

    @saga(name="everything")
    async def everything_async(s: AsyncSagaContext, fail: bool) -> str:
        await s.step("deposit", fx.action("deposit"), compensate=skip_me, compensation_retry=ONCE)
        city: str = await s.child("trip", trip_async, "Hue")
        await s.parallel("extras", extras(s))
        await s.step("check", fx.action("check", fail=fail), retry=ONCE)
        await s.step("charge", fx.action("charge"), kind="pivot")
        await s.step("notify", fx.action("notify"))
        return city

    return everything_async if is_async else everything_sync


@pytest.mark.parametrize("fail", [True, False], ids=["rolls-back", "past-the-pivot"])
def test_nested_parallel_parked_and_pivot_sagas_write_the_same_journal_on_both_surfaces(
    fail: bool,
) -> None:
    skip = {"operator:deposit": {"action": "skip", "reason": "refunded by hand"}}
    journals, logs, outcomes = [], [], []
    for is_async in (False, True):
        fx = Effects()
        runner = DurableTestRunner(_everything(fx, is_async=is_async), callbacks=skip)
        result = runner.run(fail, execution_id=EID)
        journals.append([comparable(op.record) for op in result.operations])
        logs.append(sorted(fx.log))
        outcomes.append(saga_status(runner.runtime, EID).status)

    assert sorted(journals[1]) == sorted(journals[0])  # the group's branches: in any order
    top_level = [[r for r in journal if r[1] is None] for journal in journals]
    assert top_level[1] == top_level[0]  # in the same order
    assert logs[1] == logs[0]
    assert outcomes[1] is outcomes[0]
    expected = SagaStatus.PARTIALLY_COMPENSATED if fail else SagaStatus.COMPLETED
    assert outcomes[0] is expected
