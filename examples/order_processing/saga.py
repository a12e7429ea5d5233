"""Process an order as a saga: validate, charge the card (refundable), reserve the items,
send the confirmation, then wait up to 7 days for the shipper to confirm the pickup.

If the items are out of stock the payment is refunded. If the shipper reports a failure or
never answers within 7 days, the pickup is withdrawn, a cancellation email replaces the
confirmation, the items are released and the payment refunded, in that order.

Run it (from the repository root)::

    python -m examples.order_processing            # stops waiting for the shipper
    durable callback succeed TOKEN --payload '{"tracking": "VNP-123"}'
    durable worker --until-idle                    # resumes and completes the saga

The wait is a durable callback: the process may exit; the shipper's confirmation (through
``durable callback succeed``) makes the execution due again, and a worker finishes it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from tenacity import retry_if_not_exception_type

from durable_core import RetryPolicy
from examples.order_processing.services import (
    Charge,
    InvalidOrderError,
    Order,
    OutOfStockError,
    cancel_pickup,
    charge,
    refund,
    release,
    request_pickup,
    reserve,
    send_cancellation,
    send_confirmation,
    validate,
)
from saga import SagaContext, saga

SHIPPER_TIMEOUT = timedelta(days=7)
FINAL = RetryPolicy(retry=retry_if_not_exception_type((InvalidOrderError, OutOfStockError)))
"""Retry transient failures; a bad order or missing stock is final."""


class OrderResult(BaseModel):
    """The saga's result."""

    order_id: str
    charge: Charge
    reserved: list[str]
    tracking: str


@saga
def process_order(s: SagaContext, order: Order) -> OrderResult:
    """Charge, reserve, confirm, and wait for the shipper; roll back on any failure."""
    s.step("validate", validate, order, retry=FINAL)
    paid = s.step("charge-payment", charge, order, compensate=refund)
    reserved = s.step("reserve-inventory", reserve, order, compensate=release, retry=FINAL)
    s.step("send-confirmation", send_confirmation, order, paid, compensate=send_cancellation)
    shipper = s.ctx.create_callback("shipper-confirmation", timeout=SHIPPER_TIMEOUT)
    s.step("request-pickup", request_pickup, order, shipper.token, compensate=cancel_pickup)
    shipment: Any = shipper.result()  # CallbackTimeoutError / CallbackFailedError roll back
    tracking = shipment.get("tracking", "") if isinstance(shipment, dict) else str(shipment)
    return OrderResult(order_id=order.order_id, charge=paid, reserved=reserved, tracking=tracking)
