"""Real executions for the console's browser tests, run on a real SQLite store.

``populate(store_path)`` runs, in this process and for real:

- the tour booking saga with the car sold out: it books the flight and the hotel, then rolls
  them back (``tour-rollback``);
- the tour booking saga that completes (``tour-ok``);
- the order saga up to its wait for the shipper's confirmation (``order-waiting``);
- the tour booking saga for a traveller whose name is markup (``tour-escape``), to show
  that the console prints payloads as text;
- a payment saga whose refund keeps failing, so the saga parks for an operator
  (``payment-parked``); its pivot is the step ``capture``.

The parked saga's refund fails while ``$CONSOLE_REFUND_BROKEN`` names an existing file, so
a test can "fix" it (delete the file) and then retry the compensation through the console.
"""

from __future__ import annotations

import os
from pathlib import Path

import tenacity

from durable_core import RetryPolicy, Runtime, StepContext
from durable_core.stores.sqlite import SQLiteStore
from examples.order_processing.saga import process_order
from examples.order_processing.services import Order
from examples.tour_booking.providers import Tour
from examples.tour_booking.saga import book_tour
from saga import CompensationContext, SagaContext, saga

BROKEN_ENV = "CONSOLE_REFUND_BROKEN"
MARKUP = '<img src=x onerror="window.__pwned=1"></pre><script>window.__pwned=2</script>'
"""The traveller's name in ``tour-escape``: it must appear as text, never run."""
ONCE = RetryPolicy(stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_none())


class CardDeclinedError(Exception):
    """The capture failed for good."""


def authorize(sc: StepContext, amount: int) -> str:
    """Hold the amount on the card."""
    return f"auth-{sc.idempotency_key[-6:]}:{amount}"


def refund(c: CompensationContext) -> str:
    """Release the hold; fails while the refund service is 'broken'."""
    broken = os.environ.get(BROKEN_ENV)
    if broken and Path(broken).exists():
        raise ConnectionError("refund service unavailable (HTTP 503)")
    return f"released {c.idempotency_key}"


def capture(sc: StepContext, amount: int) -> str:
    """Capture the payment: the card is declined."""
    raise CardDeclinedError(f"card declined for {amount} USD")


@saga
def take_payment(s: SagaContext, amount: int) -> str:
    """Authorize, then capture (the pivot); a declined capture rolls the hold back."""
    s.step("authorize", authorize, amount, compensate=refund, compensation_retry=ONCE)
    return s.step("capture", capture, amount, kind="pivot", retry=ONCE)


FUNCTIONS = (book_tour, process_order, take_payment)


def populate(store_path: Path) -> dict[str, str]:
    """Run the scenarios on a new SQLite store; return their execution ids by name."""
    runtime = Runtime(SQLiteStore(str(store_path)), functions=FUNCTIONS)
    try:
        ids = {
            "tour-ok": runtime.run(book_tour, Tour(), execution_id="tour-ok").id,
            "tour-rollback": runtime.run(
                book_tour, Tour(fail_car=True), execution_id="tour-rollback"
            ).id,
            "tour-escape": runtime.run(
                book_tour, Tour(traveller=MARKUP), execution_id="tour-escape"
            ).id,
            "order-waiting": runtime.run(process_order, Order(), execution_id="order-waiting").id,
            "payment-parked": runtime.run(take_payment, 120, execution_id="payment-parked").id,
        }
        for eid in ids.values():
            runtime.drive(eid)
    finally:
        runtime.store.close()
    return ids
