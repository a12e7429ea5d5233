"""Hello, durable: validate an order, charge it, hold it for 24 hours, confirm it.

Run it from the repository root::

    durable run examples.hello_durable.workflow:hello \\
        --input '{"order_id": "A-1", "amount": 42.5}' --fast-forward

Each ``ctx.step`` is checkpointed: if the process dies after the payment, a resumed
execution returns the recorded charge instead of charging again. The 24-hour ``ctx.wait``
is a durable timer: the process may exit, and ``durable worker`` resumes the execution when
the timer is due (``--fast-forward`` skips it on a virtual clock, for demos).

The payment gateway is simulated and deterministic: its first attempt for an order times
out, so the retry policy is visible in ``durable show``; the idempotency key makes the
retried charge the same charge.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from pydantic import BaseModel, Field
from tenacity import retry_if_exception_type, stop_after_attempt, wait_exponential

from durable_core import DurableContext, RetryPolicy, StepConfig, StepContext, durable

MAX_AMOUNT = 10_000.0
COOL_OFF = timedelta(hours=24)
"""How long an order is held (cancellable) before it is confirmed."""


class Order(BaseModel):
    """The input event."""

    order_id: str = Field(min_length=1, max_length=64)
    amount: float = Field(gt=0)
    email: str = "customer@example.com"


class Payment(BaseModel):
    """What the (simulated) payment gateway returns."""

    charge_id: str
    amount: float


class OrderResult(BaseModel):
    """The execution's result."""

    order_id: str
    charge_id: str
    amount: float
    confirmation_id: str


class OrderRejectedError(ValueError):
    """The order fails validation; retrying cannot help."""


class GatewayTimeoutError(ConnectionError):
    """The payment gateway did not answer in time; a retry may succeed."""


VALIDATE = StepConfig(retry=RetryPolicy.no_retry())
PAYMENT = StepConfig(
    retry=RetryPolicy(
        stop=stop_after_attempt(5),
        wait=wait_exponential(multiplier=0.1, max=0.5),
        retry=retry_if_exception_type(ConnectionError),
    )
)
"""Retry transient gateway errors quickly (inline); anything else fails the step at once."""


def charge(order: Order, idempotency_key: str, attempt: int) -> Payment:
    """Simulated gateway: the first attempt times out; the key makes the charge id stable."""
    if attempt == 1:
        raise GatewayTimeoutError(f"payment gateway timed out charging {order.order_id}")
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
    return Payment(charge_id=f"ch_{digest}", amount=order.amount)


@durable
def hello(ctx: DurableContext, order: Order) -> OrderResult:
    """Validate → charge (retried, idempotent) → wait 24 hours → send the confirmation."""

    def validate(sc: StepContext) -> Order:
        if order.amount > MAX_AMOUNT:
            raise OrderRejectedError(
                f"order {order.order_id}: amount {order.amount} is over the {MAX_AMOUNT} limit"
            )
        return order

    def pay(sc: StepContext) -> Payment:
        sc.logger.info("charging", amount=order.amount)
        return charge(order, sc.idempotency_key, sc.attempt)

    def confirm(sc: StepContext) -> str:
        sc.logger.info("sending confirmation", to=order.email)
        return "msg_" + hashlib.sha256(sc.idempotency_key.encode()).hexdigest()[:16]

    ctx.step("validate-order", validate, VALIDATE)
    payment = ctx.step("process-payment", pay, PAYMENT)
    ctx.logger.info("payment captured", charge_id=payment.charge_id)
    ctx.wait("cool-off", COOL_OFF)
    confirmation_id = ctx.step("send-confirmation", confirm)
    return OrderResult(
        order_id=order.order_id,
        charge_id=payment.charge_id,
        amount=payment.amount,
        confirmation_id=confirmation_id,
    )
