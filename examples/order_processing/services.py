"""Simulated payment, inventory, mail and shipping services, with a SQLite ledger.

Every service is idempotent by the key it is given (a repeated request with a seen key
changes nothing and is written to the ledger marked ``duplicate``), so a crash that makes
the saga send a request twice is visible and harmless. The ledger file is
``$ORDER_LEDGER``, default ``order_ledger.sqlite3`` next to the durable store.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from durable_core import StepContext
from saga import CompensationContext

LEDGER_ENV = "ORDER_LEDGER"
STORE_ENV = "DURABLE_STORE"
DEFAULT_STORE = Path(".durable") / "durable.sqlite3"
STOCK = {"tea-sen": 100, "coffee-robusta": 40, "pho-kit": 0}
"""What the warehouse has; ``pho-kit`` is always out of stock."""


class InvalidOrderError(Exception):
    """The order cannot be processed as given (not worth retrying)."""


class OutOfStockError(Exception):
    """The warehouse cannot reserve an item (not worth retrying)."""


class Item(BaseModel):
    """One order line."""

    sku: str
    qty: int = Field(gt=0)
    unit_price: float = Field(gt=0)


class Order(BaseModel):
    """The saga's input."""

    order_id: str = Field(default="A-1001", min_length=1, max_length=64)
    email: str = "an.nguyen@example.com"
    card_token: str = "tok_visa_4242"  # noqa: S105 - a fake test-card token, not a secret
    items: list[Item] = Field(
        default_factory=lambda: [
            Item(sku="tea-sen", qty=2, unit_price=12.5),
            Item(sku="coffee-robusta", qty=1, unit_price=18.5),
        ]
    )

    @property
    def total(self) -> float:
        """What the customer pays."""
        return round(sum(i.qty * i.unit_price for i in self.items), 2)


class Charge(BaseModel):
    """A payment the gateway took."""

    charge_id: str
    amount: float


def ledger_path() -> Path:
    """``$ORDER_LEDGER``, else ``order_ledger.sqlite3`` in the durable store's directory."""
    explicit = os.environ.get(LEDGER_ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE).parent / "order_ledger.sqlite3"


@contextmanager
def _ledger() -> Iterator[sqlite3.Connection]:
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS ledger (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "service TEXT NOT NULL, action TEXT NOT NULL, idempotency_key TEXT NOT NULL, "
            "detail TEXT NOT NULL, duplicate INTEGER NOT NULL, at TEXT NOT NULL)"
        )
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _record(service: str, action: str, key: str, detail: str) -> None:
    with _ledger() as db:
        seen = db.execute(
            "SELECT 1 FROM ledger WHERE service=? AND action=? AND idempotency_key=? LIMIT 1",
            (service, action, key),
        ).fetchone()
        db.execute(
            "INSERT INTO ledger (service, action, idempotency_key, detail, duplicate, at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (service, action, key, detail, int(seen is not None), datetime.now(UTC).isoformat()),
        )


def effects(execution_id: str) -> list[tuple[str, str, str]]:
    """What landed for one execution: (service, action, detail), repeats removed, in order."""
    if not ledger_path().exists():
        return []
    with _ledger() as db:
        rows = db.execute(
            "SELECT service, action, detail FROM ledger WHERE idempotency_key LIKE ? "
            "AND duplicate = 0 ORDER BY seq",
            (f"{execution_id}:%",),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


# --- services ------------------------------------------------------------------------------


def validate(sc: StepContext, order: Order) -> float:
    """Check the order; return its total."""
    if not order.items:
        raise InvalidOrderError(f"order {order.order_id} has no items")
    unknown = [i.sku for i in order.items if i.sku not in STOCK]
    if unknown:
        raise InvalidOrderError(f"order {order.order_id}: unknown items {unknown}")
    return order.total


def charge(sc: StepContext, order: Order) -> Charge:
    """Charge the customer's card (idempotent by the step's key)."""
    charge_id = "CH-" + hashlib.sha256(sc.idempotency_key.encode()).hexdigest()[:8].upper()
    _record("payments", "charge", sc.idempotency_key, f"{charge_id} {order.total:.2f} USD")
    return Charge(charge_id=charge_id, amount=order.total)


def refund(c: CompensationContext) -> str:
    """Refund the charge made under ``c.idempotency_key``."""
    paid = Charge.model_validate(c.result)
    _record("payments", "refund", c.idempotency_key, f"{paid.charge_id} {paid.amount:.2f} USD")
    return f"refunded {paid.charge_id}"


def reserve(sc: StepContext, order: Order) -> list[str]:
    """Reserve every item, or none (out of stock is final)."""
    short = [i.sku for i in order.items if STOCK[i.sku] < i.qty]
    if short:
        raise OutOfStockError(f"out of stock: {', '.join(short)}")
    lines = [f"{i.qty} x {i.sku}" for i in order.items]
    _record("inventory", "reserve", sc.idempotency_key, "; ".join(lines))
    return lines


def release(c: CompensationContext) -> None:
    """Put the reserved items back."""
    _record("inventory", "release", c.idempotency_key, "; ".join(c.result))


def send_confirmation(sc: StepContext, order: Order, paid: Charge) -> None:
    """Email the customer that the order is confirmed."""
    _record("mail", "confirmation", sc.idempotency_key, f"to {order.email}: {paid.charge_id}")


def send_cancellation(c: CompensationContext) -> None:
    """Email the customer that the order was cancelled and refunded."""
    order = Order.model_validate(c.args[0])
    _record("mail", "cancellation", c.idempotency_key, f"to {order.email}")


def request_pickup(sc: StepContext, order: Order, token: str) -> str:
    """Ask the shipper for a pickup, giving it the callback token to confirm with."""
    _record("shipping", "pickup", sc.idempotency_key, f"order {order.order_id}, token {token}")
    return token


def cancel_pickup(c: CompensationContext) -> None:
    """Withdraw the pickup request."""
    _record("shipping", "cancel-pickup", c.idempotency_key, "withdrawn")
