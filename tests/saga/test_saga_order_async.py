"""The async order example (examples/order_processing_async): its provider client now, and
its ``@saga async def`` saga once saga has an async surface.

The saga tests mirror ``test_saga_order.py`` and are skipped while ``saga.AsyncSagaContext``
does not exist; they run, unchanged, as soon as it does. The provider client's tests and the
command's refusal to run without the async saga run today.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

import saga
from durable_core import ExecutionStatus, StepContext
from durable_core.logging import ReplayAwareLogger
from durable_core.testing import CallbackFailure, DurableTestRunner, check_crash_safety
from examples.order_processing.services import Charge, Item, Order, OutOfStockError, effects
from examples.order_processing_async import providers

EID = "order-1"
SHIPPED = {"shipper-confirmation": {"tracking": "VNP-1"}}
FORWARD = ["payments/charge", "inventory/reserve", "mail/confirmation", "shipping/pickup"]
ROLLBACK = ["shipping/cancel-pickup", "mail/cancellation", "inventory/release", "payments/refund"]


def landed(execution_id: str = EID) -> list[str]:
    return [f"{service}/{action}" for service, action, _ in effects(execution_id)]


@pytest.fixture(autouse=True)
def structlog_as_it_was() -> Iterator[None]:
    """The example's ``main`` configures structlog for the process: undo it after each test,
    so later tests (tests/core/test_logging.py) see the configuration they expect."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(autouse=True)
def fast_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 ms per request, and a fresh client (the module keeps one per process)."""
    monkeypatch.setenv(providers.LATENCY_ENV, "1")
    monkeypatch.setattr(providers, "_client", None)


@pytest.fixture
def process_order() -> Any:
    from examples.order_processing_async.workflow import process_order

    return process_order


def _sc(key: str) -> StepContext:
    execution_id, operation_id = key.split(":")
    return StepContext(
        execution_id=execution_id,
        operation_id=operation_id,
        name="test",
        attempt=1,
        idempotency_key=key,
        logger=ReplayAwareLogger.for_execution("x", lambda: False),
    )


# --- the provider client (runs today) ------------------------------------------------------


def test_each_request_lands_once_per_idempotency_key() -> None:
    async def twice() -> tuple[Charge, Charge]:
        sc = _sc("ex-1:op-2")
        return await providers.charge(sc, Order()), await providers.charge(sc, Order())

    first, again = asyncio.run(twice())

    assert first == again  # the same key: the same charge
    assert landed("ex-1") == ["payments/charge"]  # the repeat is marked duplicate
    assert providers.client().requests == 2


def test_out_of_stock_is_refused_and_nothing_is_reserved() -> None:
    order = Order(items=[Item(sku="pho-kit", qty=1, unit_price=9.5)])

    with pytest.raises(OutOfStockError):
        asyncio.run(providers.reserve(_sc("ex-2:op-3"), order))

    assert landed("ex-2") == []


def test_requests_wait_side_by_side_on_one_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(providers.LATENCY_ENV, "100")
    monkeypatch.setattr(providers, "_client", None)

    async def many() -> None:
        await asyncio.gather(*(providers.charge(_sc(f"ex-{i}:op-2"), Order()) for i in range(50)))

    asyncio.run(many())

    assert providers.client().most_in_flight == 50  # all 50 waited for their answer at once
    assert all(landed(f"ex-{i}") == ["payments/charge"] for i in range(50))


# --- the saga ------------------------------------------


def test_the_order_completes_when_the_shipper_confirms(process_order: Any) -> None:
    from examples.order_processing_async.workflow import OrderResult

    runner = DurableTestRunner(process_order)
    waiting = runner.run(Order(), execution_id=EID)
    assert waiting.status is ExecutionStatus.RUNNING
    assert saga.saga_status(runner.runtime, EID).status is saga.SagaStatus.RUNNING

    runner.send_callback_success("shipper-confirmation", {"tracking": "VNP-1"})
    result = runner.resume()

    assert result.status is ExecutionStatus.SUCCEEDED
    assert isinstance(result.result, OrderResult)
    assert result.result.tracking == "VNP-1"
    assert landed() == FORWARD


def test_out_of_stock_refunds_the_payment(process_order: Any) -> None:
    order = Order(items=[Item(sku="pho-kit", qty=1, unit_price=9.5)])

    result = DurableTestRunner(process_order).run(order, execution_id=EID)

    assert result.status is ExecutionStatus.FAILED
    assert landed() == ["payments/charge", "payments/refund"]


@pytest.mark.parametrize("how", ["timeout", "failure"])
def test_a_shipper_that_fails_or_never_answers_rolls_everything_back(
    process_order: Any, how: str
) -> None:
    if how == "timeout":
        runner = DurableTestRunner(process_order, skip_callback_timeouts=True)
    else:
        failure = CallbackFailure("no truck available", error_type="NoPickup")
        runner = DurableTestRunner(process_order, callbacks={"shipper-confirmation": failure})
    start = runner.clock.now()

    result = runner.run(Order(), execution_id=EID)

    assert result.status is ExecutionStatus.FAILED
    assert landed() == FORWARD + ROLLBACK
    outcome = saga.saga_status(runner.runtime, EID)
    assert outcome.status is saga.SagaStatus.COMPENSATED
    assert outcome.cause is not None
    expected_error = "CallbackTimeoutError" if how == "timeout" else "CallbackFailedError"
    assert outcome.cause.error_type.endswith(expected_error)
    if how == "timeout":
        assert runner.clock.now() - start >= timedelta(days=7)


@pytest.mark.parametrize(
    "order", [Order(), Order(items=[Item(sku="pho-kit", qty=1, unit_price=1)])]
)
def test_the_order_passes_in_always_replay_mode(process_order: Any, order: Order) -> None:
    runner = DurableTestRunner(process_order, always_replay=True, callbacks=SHIPPED)

    result = runner.run(order, execution_id=EID)

    normal = DurableTestRunner(process_order, callbacks=SHIPPED).run(order, execution_id="normal")
    assert result.status is normal.status
    assert landed() == landed("normal")


def test_the_order_rollback_survives_a_crash_at_every_checkpoint(
    process_order: Any, ledger: Path
) -> None:
    order_ledger = ledger.parent / "order_ledger.sqlite3"
    report = check_crash_safety(
        process_order,
        Order(),
        callbacks={"shipper-confirmation": CallbackFailure("no truck")},
        before_each=lambda: order_ledger.unlink(missing_ok=True),
        check=lambda r: _expect(landed("crash-check"), FORWARD + ROLLBACK),
    )

    report.assert_ok()


@pytest.mark.parametrize("shipper", ["confirms", "fails"])
def test_the_async_saga_writes_the_journal_the_sync_saga_writes(
    process_order: Any, shipper: str
) -> None:
    from examples.order_processing.saga import process_order as sync_process_order

    answer: Any = SHIPPED["shipper-confirmation"]
    if shipper == "fails":
        answer = CallbackFailure("no truck", error_type="NoPickup")
    callbacks = {"shipper-confirmation": answer}
    journals = []
    for fn, eid in ((sync_process_order, "same-id"), (process_order, "same-id")):
        result = DurableTestRunner(fn, callbacks=callbacks).run(Order(), execution_id=eid)
        journals.append([_comparable(op.record) for op in result.operations])
    assert journals[0] == journals[1]


def test_the_command_runs_an_order_end_to_end_on_sqlite(tmp_path: Path) -> None:
    from examples.order_processing_async.__main__ import main

    assert main(["--store", str(tmp_path / "durable.sqlite3"), "--confirm", "--id", EID]) == 0
    assert landed() == FORWARD


def _comparable(rec: Any) -> tuple[Any, ...]:
    """A record without what differs between two runs: times, the random callback token
    (and the pickup step's result, which is that token), tracebacks."""
    token_bearing = rec.type.value == "CALLBACK" or rec.name == "request-pickup"
    result = None if token_bearing else rec.result
    error = (rec.error.type, rec.error.message) if rec.error is not None else None
    return (rec.id, rec.parent_id, rec.type, rec.sub_type, rec.name, rec.status, result, error)


def _expect(found: object, expected: object) -> None:
    assert found == expected
