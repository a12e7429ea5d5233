"""The order-processing example: charge, reserve, confirm, wait for the shipper; roll back
on missing stock, a shipper failure or a shipper that never answers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from durable_core import ExecutionStatus
from durable_core.testing import CallbackFailure, DurableTestRunner, check_crash_safety
from examples.order_processing.saga import OrderResult, process_order
from examples.order_processing.services import Item, Order, effects
from saga import SagaStatus, saga_status

EID = "order-1"
SHIPPED = {"shipper-confirmation": {"tracking": "VNP-1"}}
FORWARD = ["payments/charge", "inventory/reserve", "mail/confirmation", "shipping/pickup"]
ROLLBACK = ["shipping/cancel-pickup", "mail/cancellation", "inventory/release", "payments/refund"]


def landed(execution_id: str = EID) -> list[str]:
    return [f"{service}/{action}" for service, action, _ in effects(execution_id)]


def test_the_order_completes_when_the_shipper_confirms() -> None:
    runner = DurableTestRunner(process_order)
    waiting = runner.run(Order(), execution_id=EID)
    assert waiting.status is ExecutionStatus.RUNNING
    assert saga_status(runner.runtime, EID).status is SagaStatus.RUNNING

    runner.send_callback_success("shipper-confirmation", {"tracking": "VNP-1"})
    result = runner.resume()

    assert result.status is ExecutionStatus.SUCCEEDED
    assert isinstance(result.result, OrderResult)
    assert result.result.tracking == "VNP-1"
    assert landed() == FORWARD


def test_out_of_stock_refunds_the_payment() -> None:
    order = Order(items=[Item(sku="pho-kit", qty=1, unit_price=9.5)])

    result = DurableTestRunner(process_order).run(order, execution_id=EID)

    assert result.status is ExecutionStatus.FAILED
    assert landed() == ["payments/charge", "payments/refund"]


@pytest.mark.parametrize("how", ["timeout", "failure"])
def test_a_shipper_that_fails_or_never_answers_rolls_everything_back(how: str) -> None:
    if how == "timeout":
        runner = DurableTestRunner(process_order, skip_callback_timeouts=True)
    else:
        failure = CallbackFailure("no truck available", error_type="NoPickup")
        runner = DurableTestRunner(process_order, callbacks={"shipper-confirmation": failure})
    start = runner.clock.now()

    result = runner.run(Order(), execution_id=EID)

    assert result.status is ExecutionStatus.FAILED
    assert landed() == FORWARD + ROLLBACK
    outcome = saga_status(runner.runtime, EID)
    assert outcome.status is SagaStatus.COMPENSATED
    assert outcome.cause is not None
    expected_error = "CallbackTimeoutError" if how == "timeout" else "CallbackFailedError"
    assert outcome.cause.error_type.endswith(expected_error)
    if how == "timeout":
        assert runner.clock.now() - start >= timedelta(days=7)


@pytest.mark.parametrize(
    "order", [Order(), Order(items=[Item(sku="pho-kit", qty=1, unit_price=1)])]
)
def test_the_order_passes_in_always_replay_mode(order: Order) -> None:
    runner = DurableTestRunner(process_order, always_replay=True, callbacks=SHIPPED)

    result = runner.run(order, execution_id=EID)

    normal = DurableTestRunner(process_order, callbacks=SHIPPED).run(order, execution_id="normal")
    assert result.status is normal.status
    assert landed() == landed("normal")


def test_the_order_rollback_survives_a_crash_at_every_checkpoint(ledger: Path) -> None:
    order_ledger = ledger.parent / "order_ledger.sqlite3"
    report = check_crash_safety(
        process_order,
        Order(),
        callbacks={"shipper-confirmation": CallbackFailure("no truck")},
        before_each=lambda: order_ledger.unlink(missing_ok=True),
        check=lambda r: _expect(landed("crash-check"), FORWARD + ROLLBACK),
    )

    report.assert_ok()


def _expect(found: object, expected: object) -> None:
    assert found == expected
