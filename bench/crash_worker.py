"""The crash harness's worker: ``durable worker --until-idle`` with a probe at every boundary.

Started by ``bench/crash_harness.py`` (not by hand), from the repository root, with
``DURABLE_STORE``, ``TOUR_LEDGER`` and ``ORDER_LEDGER`` pointing at one run's files::

    python bench/crash_worker.py --store S [--hold N] [--latency-ms M --seed X] [--break MODE]

It runs the real ``durable`` CLI (``durable_core.cli.main``: ``worker --until-idle``) after
wrapping, in this process only, the SQLite store's ``claim_due`` / ``write_operations`` /
``finish_invocation`` and the example services' ledger function ``_record`` (the provider
request inside each step and each compensation). Every probe prints one JSON line on
standard output, as a single ``write(2)``, so the harness sees it even if the process is
killed the next instant::

    {"k": "write", "w": "before", "b": 3, "ops": [["book-hotel", "SUCCEEDED"]]}
    {"k": "ledger", "w": "after", "b": 4, "svc": "hotel", "act": "book", "key": "id:book-hotel"}

``b`` numbers the checkpoint boundaries this worker passed (before and after each journal
write, each end of an invocation, each provider request). ``claim`` (an execution leased)
is reported without a number. With ``--hold N`` the worker freezes at boundary ``N`` after
printing it with ``"hold": true``, and the harness kills it (-9) there. ``--latency-ms``
adds seeded random delays inside each provider request (before and after its effect), so a
kill at a random time often lands inside a step or a compensation.

``--break`` deliberately breaks something, to show the harness detects it:
``no-dedupe`` (the services ignore idempotency keys: every request is a new effect),
``drop-undo`` (the services acknowledge undo requests without doing them),
``lose-undo-checkpoint`` (the store acknowledges a compensation's success without storing
it, as a store that lies about durability would).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # examples/ is importable, as from the repository root

import examples.order_processing.services as order_services  # noqa: E402
import examples.tour_booking.providers as tour_providers  # noqa: E402
from durable_core import cli  # noqa: E402
from durable_core.records import Lease, Operation, OperationStatus  # noqa: E402
from durable_core.stores.base import InvocationEnd  # noqa: E402
from durable_core.stores.sqlite import SQLiteStore  # noqa: E402

UNDO_ACTIONS = frozenset({"cancel", "noop", "refund", "release", "cancellation", "cancel-pickup"})
"""Ledger actions that compensations send (the rest are forward steps' requests)."""
BREAKS = ("no-dedupe", "drop-undo", "lose-undo-checkpoint")


class Probe:
    """Numbers the boundaries, reports them on stdout, freezes at the held one."""

    def __init__(self, hold: int, latency_ms: float, seed: int) -> None:
        self.hold = hold
        self.latency_s = latency_ms / 1000
        self.rng = random.Random(seed)
        self.boundary = 0

    def emit(self, kind: str, when: str, **fields: Any) -> None:
        """Report one probe; at a boundary, count it and freeze there if it is the held one."""
        event: dict[str, Any] = {"k": kind, "w": when, **fields}
        if kind != "claim":
            event["b"] = self.boundary
            event["hold"] = self.boundary == self.hold
            self.boundary += 1
        os.write(1, (json.dumps(event) + "\n").encode())
        if event.get("hold"):
            while True:  # frozen: the harness kills this process (-9) now
                time.sleep(3600)

    def latency(self) -> None:
        """A seeded random delay, as a slow provider would add."""
        if self.latency_s > 0:
            time.sleep(self.rng.uniform(0, self.latency_s))


def install(probe: Probe, breaks: str | None) -> None:
    """Wrap the store and the two example ledgers of this process with ``probe``."""
    claim_due = SQLiteStore.claim_due
    write_operations = SQLiteStore.write_operations
    finish_invocation = SQLiteStore.finish_invocation

    def claim(store: SQLiteStore, owner: str, now: datetime, ttl: timedelta, limit: int) -> Any:
        leases = claim_due(store, owner, now, ttl, limit)
        if leases:
            probe.emit("claim", "after", ids=[lease.execution_id for lease in leases])
        return leases

    def write(
        store: SQLiteStore, lease: Lease, ops: Sequence[Operation], now: datetime, ttl: timedelta
    ) -> Lease:
        named = [[op.name or op.id, op.status.value] for op in ops]
        probe.emit("write", "before", ops=named)
        if breaks == "lose-undo-checkpoint":
            ops = [op for op in ops if not _undo_done(op)]
        out = write_operations(store, lease, ops, now, ttl)
        probe.emit("write", "after", ops=named)
        return out

    def finish(store: SQLiteStore, lease: Lease, end: InvocationEnd, now: datetime) -> Any:
        probe.emit("finish", "before", status=end.status.value)
        out = finish_invocation(store, lease, end, now)
        probe.emit("finish", "after", status=end.status.value)
        return out

    setattr(SQLiteStore, "claim_due", claim)  # noqa: B010 - patch this process only
    setattr(SQLiteStore, "write_operations", write)  # noqa: B010
    setattr(SQLiteStore, "finish_invocation", finish)  # noqa: B010
    _wrap_ledger(tour_providers, probe, breaks)
    _wrap_ledger(order_services, probe, breaks)


def _undo_done(op: Operation) -> bool:
    name = op.name or ""
    return name.startswith("compensate:") and op.status is OperationStatus.SUCCEEDED


def _wrap_ledger(module: Any, probe: Probe, breaks: str | None) -> None:
    """Wrap ``module._record(service, action, key, ...)``, the provider's side of a request."""
    record: Callable[..., Any] = module._record
    ledger: Callable[[], Any] = module._ledger

    def probed(service: str, action: str, key: str, *rest: str) -> Any:
        probe.emit("ledger", "before", svc=service, act=action, key=key)
        probe.latency()
        if breaks == "drop-undo" and action in UNDO_ACTIONS:
            out: Any = True  # acknowledged, never done
        else:
            out = record(service, action, key, *rest)
        if breaks == "no-dedupe":
            with ledger() as db:  # the provider treats the request as new, whatever its key
                db.execute("UPDATE ledger SET duplicate = 0")
        probe.emit("ledger", "after", svc=service, act=action, key=key)
        probe.latency()
        return out

    module._record = probed


def main(argv: Sequence[str] | None = None) -> int:
    """Install the probes, then run ``durable worker --until-idle`` on ``--store``."""
    parser = argparse.ArgumentParser(prog="bench/crash_worker.py")
    parser.add_argument("--store", required=True)
    parser.add_argument("--hold", type=int, default=-1, help="freeze at this boundary")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--break", dest="breaks", choices=BREAKS)
    parser.add_argument("--lease-ttl", default="1")
    args = parser.parse_args(argv)
    install(Probe(args.hold, args.latency_ms, args.seed), args.breaks)
    return cli.main(
        ["--store", args.store, "--log-level", "error", "worker", "--until-idle",
         "--lease-ttl", args.lease_ttl, "--poll", "0.05"]
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
