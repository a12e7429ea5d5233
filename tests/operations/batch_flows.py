"""A map workflow and a bare worker loop, for the kill -9 test on SQLite.

Run as a script it is the worker: ``python batch_flows.py STORE LEASE_TTL_S EXECUTION_ID``
loops ``Runtime(SQLiteStore(STORE)).tick()`` until that execution is finished (or 60 s).

The workflow maps over items; each item's step appends ``start`` to a ledger file, holds
item ``hold`` until the ``gate`` file exists, then appends ``effect``. The ledger is the
ground truth of how often each item's body ran, whatever the journal says.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from durable_core import DurableContext, Runtime, RuntimeOptions, StepContext, durable
from durable_core.stores.sqlite import SQLiteStore

HOLD_LIMIT_S = 60.0


def note(ledger: str, item: int, kind: str) -> None:
    """Append one ledger line (single small O_APPEND write: lines never interleave)."""
    with Path(ledger).open("a") as f:
        f.write(json.dumps({"item": item, "kind": kind}) + "\n")


@durable(name="batch_flows:map_job")
def map_job(ctx: DurableContext, job: dict[str, Any]) -> list[int]:
    """Square every item; item ``job["hold"]`` waits for ``job["gate"]`` to exist."""

    def item(c: DurableContext, x: int, i: int) -> int:
        def effect(sc: StepContext) -> int:
            note(job["ledger"], x, "start")
            if x == job["hold"]:
                deadline = time.monotonic() + HOLD_LIMIT_S
                while not Path(job["gate"]).exists() and time.monotonic() < deadline:
                    time.sleep(0.01)  # a real process waiting for a real file
            note(job["ledger"], x, "effect")
            return x * x

        return c.step("effect", effect)

    result = ctx.map(job["items"], item, max_concurrency=job["concurrency"])
    return result.raise_if_failed().values()


def main(store: str, lease_ttl: str, execution_id: str) -> int:
    """Tick until ``execution_id`` is finished; exit 0 then, 1 after 60 s."""
    options = RuntimeOptions(lease_ttl=timedelta(seconds=float(lease_ttl)))
    rt = Runtime(SQLiteStore(store), options=options, functions=[map_job])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rt.tick()
        if rt.get(execution_id).status.is_terminal:
            return 0
        time.sleep(0.02)  # poll interval of a real worker loop
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
