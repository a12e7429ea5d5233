"""The order saga, async: validate, charge the card (refundable), reserve the items, send
the confirmation, then wait up to 7 days for the shipper to confirm the pickup.

Step for step the saga of :mod:`examples.order_processing.saga` — the same names, options,
compensations and result — written ``@saga async def`` with ``await s.step(...)`` over the
async provider client (:mod:`examples.order_processing_async.providers`). It writes the
same journal, so an order started by either can be finished by the other.

If the items are out of stock the payment is refunded. If the shipper reports a failure or
never answers within 7 days, the pickup is withdrawn, a cancellation email replaces the
confirmation, the items are released and the payment refunded, in that order.
"""

from __future__ import annotations

from typing import Any

from examples.order_processing.saga import FINAL, SHIPPER_TIMEOUT, OrderResult
from examples.order_processing.services import Order
from examples.order_processing_async.providers import (
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
from saga import AsyncSagaContext, saga

__all__ = ["FINAL", "SHIPPER_TIMEOUT", "OrderResult", "process_order"]


@saga
async def process_order(s: AsyncSagaContext, order: Order) -> OrderResult:
    """Charge, reserve, confirm, and wait for the shipper; roll back on any failure."""
    await s.step("validate", validate, order, retry=FINAL)
    paid = await s.step("charge-payment", charge, order, compensate=refund)
    reserved = await s.step("reserve-inventory", reserve, order, compensate=release, retry=FINAL)
    await s.step("send-confirmation", send_confirmation, order, paid, compensate=send_cancellation)
    shipper = await s.ctx.create_callback("shipper-confirmation", timeout=SHIPPER_TIMEOUT)
    await s.step("request-pickup", request_pickup, order, shipper.token, compensate=cancel_pickup)
    shipment: Any = await shipper.result()  # CallbackTimeoutError / CallbackFailedError roll back
    tracking = shipment.get("tracking", "") if isinstance(shipment, dict) else str(shipment)
    return OrderResult(order_id=order.order_id, charge=paid, reserved=reserved, tracking=tracking)
