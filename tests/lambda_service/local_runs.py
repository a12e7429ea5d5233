"""The examples run in-process on SQLite: the reference the Lambda modes are compared with."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from durable_core import ExecutionStatus, Runtime
from durable_core.stores.sqlite import SQLiteStore
from durable_core.testing import VirtualClock
from examples.tour_booking import providers
from examples.tour_booking.providers import Tour
from examples.tour_booking.saga import book_tour


def local_tour_effects(
    tmp_path: Path, tour: Tour, execution_id: str = "local-run"
) -> list[tuple[str, str, str]]:
    """Book ``tour`` in-process on SQLite; the ledger's (provider, action, operation id)."""
    clock = VirtualClock()
    runtime = Runtime(SQLiteStore(tmp_path / f"{execution_id}.sqlite3"), clock=clock)
    ex = runtime.run(book_tour, tour, execution_id=execution_id)
    while ex.status is ExecutionStatus.RUNNING and ex.wake_at is not None:
        clock.advance(max(ex.wake_at - clock.now(), timedelta(0)))
        runtime.tick()
        ex = runtime.get(execution_id)
    return providers.effects(execution_id)
