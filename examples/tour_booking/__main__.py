"""``python -m examples.tour_booking [--fail-car]``: book the seed tour on the SQLite store.

Runs the saga end to end in this process on ``$DURABLE_STORE`` (default
``.durable/durable.sqlite3``), then prints the saga's forward and rollback paths and what
the providers' ledger recorded for this execution.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
import uuid
from collections.abc import Sequence

import structlog

from durable_core import ExecutionStatus, Runtime
from durable_core.cli import command_name
from durable_core.stores.sqlite import SQLiteStore
from examples.tour_booking.providers import DEFAULT_STORE, STORE_ENV, Tour, ledger_path, ledger_rows
from examples.tour_booking.saga import book_tour
from saga import saga_status
from saga.cli import render_outcome

MAX_WAIT_S = 120.0
"""How long this demo waits for retry timers before leaving the saga to a worker."""


def main(argv: Sequence[str] | None = None) -> int:
    """Book the tour; return 0 once the saga completed or was rolled back."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.tour_booking",
        description="Book SGN→DAD, the Hilton Da Nang and an airport car as one saga.",
    )
    for what in ("flight", "hotel", "car"):
        parser.add_argument(
            f"--fail-{what}", action="store_true", help=f"simulate: the {what} is sold out"
        )
    parser.add_argument("--store", default=os.environ.get(STORE_ENV) or str(DEFAULT_STORE))
    parser.add_argument("--id", help="execution id (default: a new one)")
    parser.add_argument("--verbose", action="store_true", help="show the saga's logs")
    args = parser.parse_args(argv)
    _quiet_logs(verbose=args.verbose)
    default_store = os.environ.get(STORE_ENV) or str(DEFAULT_STORE)
    store = "" if args.store == default_store else f" --store {shlex.quote(args.store)}"
    os.environ.setdefault(STORE_ENV, args.store)  # the ledger lives next to the store

    tour = Tour(fail_flight=args.fail_flight, fail_hotel=args.fail_hotel, fail_car=args.fail_car)
    failing = [w for w in ("flight", "hotel", "car") if getattr(args, f"fail_{w}")]
    print(
        f"Tour {tour.tour_id} for {tour.traveller}: {tour.origin}→{tour.destination} on "
        f"{tour.depart}, {tour.nights} nights at {tour.hotel}, airport car"
        + (f" (simulating: {', '.join(failing)} sold out)" if failing else "")
    )
    runtime = Runtime(SQLiteStore(args.store))
    try:
        ex = runtime.run(book_tour, tour, execution_id=args.id or f"tour-{uuid.uuid4().hex[:8]}")
        deadline = time.monotonic() + MAX_WAIT_S
        while ex.status is ExecutionStatus.RUNNING and ex.wake_at is not None:
            if time.monotonic() > deadline:
                break
            time.sleep(max(0.0, min(1.0, (ex.wake_at - runtime.clock.now()).total_seconds())))
            ex = runtime.drive(ex.id)
        print()
        print(render_outcome(saga_status(runtime, ex.id)))
    finally:
        runtime.store.close()
    print()
    print(f"ledger {ledger_path()} (this execution):")
    for row in ledger_rows(ex.id):
        dup = "  (duplicate request, no effect)" if row.duplicate else ""
        print(f"  {row.provider:<8} {row.action:<7} {row.ref:<10} {row.detail}{dup}")
    print()
    saga_cli, durable_cli = command_name("durable-saga"), command_name("durable")
    print(f"more: {saga_cli}{store} status {ex.id}   |   {durable_cli}{store} show {ex.id}")
    return 0


def _quiet_logs(*, verbose: bool) -> None:
    """Send the saga's structlog lines to stderr, and only errors unless ``verbose``."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.INFO if verbose else logging.ERROR
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


if __name__ == "__main__":
    sys.exit(main())
