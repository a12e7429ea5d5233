"""An async client for the shop's providers: payments, inventory, mail and the shipper.

It stands in for an async HTTP client (``httpx.AsyncClient``, ``aiohttp``): every request
takes ``latency`` seconds (``asyncio.sleep``, default ``$ORDER_LATENCY_MS`` or 20 ms), then
the provider records its effect with the request's idempotency key in the same SQLite
ledger as the sync example (:mod:`examples.order_processing.services`: ``$ORDER_LEDGER``,
read back with ``services.effects``). A request repeated with a key already seen changes
nothing and is written marked ``duplicate``, so a crash that makes the saga send it twice
is visible and harmless.

Below the client, the saga's actions and compensations, ``async`` and with the same names
and arguments as the sync example's: ``action(sc, *args)``, ``undo(c)``.

Invariants:
- Nothing blocks the event loop: the wait is ``asyncio.sleep`` and the ledger write (the
  provider's side, a blocking SQLite commit) runs on a thread.
- Every effect goes through ``services._record`` looked up at call time, so the crash
  harness's probes (``bench/crash_worker.py`` wraps that function) see these requests too.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

from durable_core import StepContext
from examples.order_processing import services
from examples.order_processing.services import (
    STOCK,
    Charge,
    InvalidOrderError,
    Order,
    OutOfStockError,
)
from saga import CompensationContext

LATENCY_ENV = "ORDER_LATENCY_MS"
DEFAULT_LATENCY_S = 0.02


def default_latency() -> float:
    """``$ORDER_LATENCY_MS`` in seconds, else 20 ms."""
    raw = os.environ.get(LATENCY_ENV)
    return float(raw) / 1000 if raw else DEFAULT_LATENCY_S


class ShopClient:
    """Async client of the four providers; each method is one request, keyed for dedupe."""

    def __init__(self, latency: float | None = None) -> None:
        self.latency = default_latency() if latency is None else latency
        self.requests = 0
        """Requests sent by this client (repeats included)."""
        self.in_flight = 0
        self.most_in_flight = 0
        """The most requests that were waiting for their answer at once."""

    async def _request(self, service: str, action: str, key: str, detail: str) -> None:
        self.requests += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)  # the round trip
        finally:
            self.in_flight -= 1
        await asyncio.to_thread(services._record, service, action, key, detail)

    async def charge(self, order: Order, *, idempotency_key: str) -> Charge:
        """Take the order's total from the customer's card."""
        charge_id = "CH-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:8].upper()
        detail = f"{charge_id} {order.total:.2f} USD"
        await self._request("payments", "charge", idempotency_key, detail)
        return Charge(charge_id=charge_id, amount=order.total)

    async def refund(self, paid: Charge, *, idempotency_key: str) -> None:
        """Give a charge back."""
        detail = f"{paid.charge_id} {paid.amount:.2f} USD"
        await self._request("payments", "refund", idempotency_key, detail)

    async def reserve(self, order: Order, *, idempotency_key: str) -> list[str]:
        """Reserve every line of the order, or none (``OutOfStockError``)."""
        await asyncio.sleep(self.latency)  # asking is a request too, even when refused
        short = [i.sku for i in order.items if STOCK.get(i.sku, 0) < i.qty]
        if short:
            raise OutOfStockError(f"out of stock: {', '.join(short)}")
        lines = [f"{i.qty} x {i.sku}" for i in order.items]
        await self._request("inventory", "reserve", idempotency_key, "; ".join(lines))
        return lines

    async def release(self, lines: list[str], *, idempotency_key: str) -> None:
        """Put reserved lines back."""
        await self._request("inventory", "release", idempotency_key, "; ".join(lines))

    async def send_email(self, kind: str, detail: str, *, idempotency_key: str) -> None:
        """Send the customer an e-mail (``confirmation`` or ``cancellation``)."""
        await self._request("mail", kind, idempotency_key, detail)

    async def request_pickup(self, order: Order, token: str, *, idempotency_key: str) -> None:
        """Ask the shipper for a pickup; it answers later through the callback ``token``."""
        detail = f"order {order.order_id}, token {token}"
        await self._request("shipping", "pickup", idempotency_key, detail)

    async def cancel_pickup(self, *, idempotency_key: str) -> None:
        """Withdraw a pickup request."""
        await self._request("shipping", "cancel-pickup", idempotency_key, "withdrawn")


_client: ShopClient | None = None


def client() -> ShopClient:
    """The process's client (made on first use, so ``$ORDER_LATENCY_MS`` can be set first)."""
    global _client  # noqa: PLW0603 - one client per process, like a shared HTTP session
    if _client is None:
        _client = ShopClient()
    return _client


# --- the saga's actions and compensations ------------------------------------------------


async def validate(sc: StepContext, order: Order) -> float:
    """Check the order (no request: a bad order is final); return its total."""
    if not order.items:
        raise InvalidOrderError(f"order {order.order_id} has no items")
    unknown = [i.sku for i in order.items if i.sku not in STOCK]
    if unknown:
        raise InvalidOrderError(f"order {order.order_id}: unknown items {unknown}")
    return order.total


async def charge(sc: StepContext, order: Order) -> Charge:
    """Charge the customer's card (idempotent by the step's key)."""
    return await client().charge(order, idempotency_key=sc.idempotency_key)


async def refund(c: CompensationContext) -> str:
    """Refund the charge made under ``c.idempotency_key``."""
    paid = Charge.model_validate(c.result)
    await client().refund(paid, idempotency_key=c.idempotency_key)
    return f"refunded {paid.charge_id}"


async def reserve(sc: StepContext, order: Order) -> list[str]:
    """Reserve every item, or none (out of stock is final)."""
    return await client().reserve(order, idempotency_key=sc.idempotency_key)


async def release(c: CompensationContext) -> None:
    """Put the reserved items back."""
    await client().release(list(c.result), idempotency_key=c.idempotency_key)


async def send_confirmation(sc: StepContext, order: Order, paid: Charge) -> None:
    """Email the customer that the order is confirmed."""
    detail = f"to {order.email}: {paid.charge_id}"
    await client().send_email("confirmation", detail, idempotency_key=sc.idempotency_key)


async def send_cancellation(c: CompensationContext) -> None:
    """Email the customer that the order was cancelled and refunded."""
    order = Order.model_validate(c.args[0])
    await client().send_email(
        "cancellation", f"to {order.email}", idempotency_key=c.idempotency_key
    )


async def request_pickup(sc: StepContext, order: Order, token: str) -> str:
    """Ask the shipper for a pickup, giving it the callback token to confirm with."""
    await client().request_pickup(order, token, idempotency_key=sc.idempotency_key)
    return token


async def cancel_pickup(c: CompensationContext) -> None:
    """Withdraw the pickup request."""
    await client().cancel_pickup(idempotency_key=c.idempotency_key)
