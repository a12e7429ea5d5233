"""One worker process of :mod:`scenarios.processes`: run the scenario's execution while due.

    python -m scenarios.proc_worker DIR [--kill-at K --point before|after]

Builds the scenario's saga from ``DIR/scenario.json`` (registered with its runtime by name,
never imported from a store record), opens the store, the shared ledger and the clock file,
and drives the execution until it is no longer due. With ``--kill-at K`` it sends itself
``SIGKILL`` just before or just after its K-th checkpoint write: a real process death at an
exact boundary, with the lease still held.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from durable_core import Operation, SQLiteStore
from durable_core.records import Lease
from durable_core.testing._stores import DelegatingStore
from scenarios import drive
from scenarios.processes import FileClock, SqliteLedger, files
from scenarios.programs import scenario_from_json


class KillingStore(DelegatingStore):
    """SIGKILLs this process at its ``kill_at``-th checkpoint write (before or after it)."""

    def __init__(self, inner: SQLiteStore, kill_at: int, point: str) -> None:
        super().__init__(inner)
        self.kill_at = kill_at
        self.point = point
        self.calls = 0

    def write_operations(
        self, lease: Lease, operations: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        self.calls += 1
        armed = self.calls == self.kill_at
        if armed and self.point == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        out = self.inner.write_operations(lease, operations, now, ttl)
        if armed:
            os.kill(os.getpid(), signal.SIGKILL)
        return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenarios.proc_worker")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--kill-at", type=int, default=0)
    parser.add_argument("--point", default="after", choices=("before", "after"))
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    scenario, store_path, ledger_path, clock_path = files(args.directory)
    program, schedule = scenario_from_json(scenario.read_text())
    store = KillingStore(SQLiteStore(store_path), args.kill_at, args.point)
    worker = drive.Driver(
        program,
        schedule,
        store=store,
        clock=FileClock(clock_path),
        ledger=SqliteLedger(ledger_path),
    )
    worker.rt.drive(drive.EXECUTION_ID)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
