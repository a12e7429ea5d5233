"""Sagas run by real worker processes in the crash-loop tests (``test_saga_liveness``).

Imported as the top-level module ``crash_flows`` by the test (tests/saga is on
``sys.path``) and by ``durable worker`` processes started with tests/saga as their current
directory, so both sides record the function name ``crash_flows:<name>``.

Each body appends one JSON line per run to the event's ledger file (one ``os.write`` with
``O_APPEND``, atomic across processes), so the test counts real runs, whatever the journal
says.
"""

from __future__ import annotations

import json
import os
import threading

from pydantic import BaseModel

from durable_core import StepContext
from saga import CompensationContext, SagaContext, saga

CRASH_EXIT_CODE = 70
"""What the crashing step exits its worker with (``os._exit``: no cleanup, lease kept)."""


class Trip(BaseModel):
    ledger: str


def note(ledger: str, **fields: object) -> None:
    line = (json.dumps(fields, sort_keys=True) + "\n").encode()
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@saga
def crash_loop(s: SagaContext, trip: Trip) -> str:
    """Books a flight, then a hotel whose provider client kills the worker process."""

    def book_flight(sc: StepContext) -> str:
        note(trip.ledger, kind="do", step="flight", pid=os.getpid())
        return "F-1"

    def cancel_flight(c: CompensationContext) -> str:
        note(trip.ledger, kind="undo", step="flight", pid=os.getpid())
        return "cancelled"

    def book_hotel(sc: StepContext) -> str:
        note(trip.ledger, kind="do", step="hotel", pid=os.getpid())
        os._exit(CRASH_EXIT_CODE)  # a segfaulting native client, as the worker sees it

    s.step("flight", book_flight, compensate=cancel_flight)
    return s.step("hotel", book_hotel)


@saga
def hangs(s: SagaContext, trip: Trip) -> str:
    """One step whose body hangs for good (no timeout): only the shutdown grace ends it."""

    def stuck(sc: StepContext) -> str:
        note(trip.ledger, kind="do", step="stuck", pid=os.getpid())
        threading.Event().wait()
        return "never"

    return s.step("stuck", stuck)
