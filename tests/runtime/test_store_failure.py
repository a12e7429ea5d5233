"""A failed write (the disk is full) gives the lease back instead of stranding it.

The disk fills for real: SQLite's ``max_page_count`` caps the database file at its current
size, so the next write that needs a new page fails with "database or disk is full" — the
same SQLITE_FULL a full file system gives. Nothing is half-written (stores are all or
nothing), so another worker may take the execution over at once, not one lease TTL later.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from durable_core import (
    DurableContext,
    ExecutionStatus,
    Runtime,
    RuntimeOptions,
    StoreError,
    durable,
)
from durable_core.stores.sqlite import SQLiteStore
from durable_core.testing import VirtualClock


@durable
def big_step(ctx: DurableContext, event: None) -> int:
    return len(ctx.step("fetch", lambda sc: "x" * 200_000))


def test_a_write_failing_on_a_full_disk_releases_the_lease(tmp_path: Path) -> None:
    path = tmp_path / "durable.sqlite3"
    clock = VirtualClock()
    options = RuntimeOptions(lease_ttl=timedelta(minutes=5))
    store = SQLiteStore(path)
    rt = Runtime(store, clock=clock, options=options, worker_id="w1")
    rt.start(big_step, None, execution_id="full")
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on

    with pytest.raises(StoreError, match="full"):
        rt.run_once("full")

    other = SQLiteStore(path)  # another worker's handle, at the same instant
    try:
        ex = other.get_execution("full")
        assert ex.status is ExecutionStatus.RUNNING
        assert ex.lease_owner is None  # released: nobody waits out the 5-minute TTL
        assert other.load_operations("full") == []  # nothing half-written
        assert ex.recovery_attempts == 0  # a store error is no worker death
        # Space is freed (a new handle has no page cap): another worker finishes it now.
        w2 = Runtime(other, clock=clock, options=options, worker_id="w2", functions=[big_step])
        done = w2.drive("full")
        assert done.status is ExecutionStatus.SUCCEEDED
    finally:
        other.close()
        store.close()
