"""parallel / map on SQLiteStore: concurrent branch writes, and a real kill -9 mid-batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from durable_core import (
    DurableContext,
    ExecutionStatus,
    OperationStatus,
    Runtime,
    durable,
)
from durable_core.stores.sqlite import SQLiteStore
from durable_core.testing import VirtualClock
from tests.operations import batch_flows
from tests.operations.conftest import Ledger, replay_finished

WAIT_S = 30.0


def wait_until(predicate: Callable[[], Any], what: str) -> Any:
    """Poll what another process produces, bounded; never a sleep standing in for time."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT_S}s waiting for {what}")
        time.sleep(0.02)


def test_concurrent_branches_write_safely_on_sqlite(tmp_path: Path, ledger: Ledger) -> None:
    clock = VirtualClock()
    store = SQLiteStore(tmp_path / "batch.db")

    @durable(name="tests:sqlite_fan_out")
    def wf(ctx: DurableContext, n: int) -> list[list[int]]:
        def item(c: DurableContext, x: int, i: int) -> list[int]:
            a = c.step("a", lambda sc: ledger.count(f"a{x}", x))
            pair = c.parallel(
                [
                    lambda b: b.step("p", lambda sc: ledger.count(f"p{x}", a + 1)),
                    lambda b: b.step("q", lambda sc: ledger.count(f"q{x}", a + 2)),
                ]
            )
            return pair.raise_if_failed().values()

        return ctx.map(list(range(n)), item, max_concurrency=8).raise_if_failed().values()

    n = 24
    rt = Runtime(store, clock=clock)
    ex = rt.run(wf, n)
    assert ex.status is ExecutionStatus.SUCCEEDED, ex.error
    assert rt.result(ex.id) == [[x + 1, x + 2] for x in range(n)]
    assert set(ledger.snapshot().values()) == {1}
    assert len(ledger.snapshot()) == 3 * n
    store.close()

    reopened = SQLiteStore(tmp_path / "batch.db")
    ops = reopened.load_operations(ex.id)
    # map + n x (item + step a + parallel + 2 x (branch + step))
    assert len(ops) == 1 + n * 7
    assert len({op.id for op in ops}) == len(ops)
    assert all(op.status is OperationStatus.SUCCEEDED for op in ops)
    end, writes = replay_finished(reopened, clock, wf, ex.id)
    assert (end.result, writes) == (ex.result, 0)
    reopened.close()


def read_ledger(path: Path) -> Counter[tuple[int, str]]:
    if not path.exists():
        return Counter()
    lines = [line for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]
    return Counter((e["item"], e["kind"]) for e in map(json.loads, lines))


def finished_items(store_path: Path, execution_id: str) -> set[str]:
    store = SQLiteStore(store_path)
    try:
        return {
            op.name or ""
            for op in store.load_operations(execution_id)
            if op.sub_type == "MapIteration" and op.status is OperationStatus.SUCCEEDED
        }
    finally:
        store.close()


def start_worker(store: Path, execution_id: str, log: Path) -> subprocess.Popen[bytes]:
    script = Path(batch_flows.__file__)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, str(script), str(store), "1", execution_id],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )


def test_kill_9_mid_batch_never_reruns_a_finished_item(tmp_path: Path) -> None:
    store_path = tmp_path / "kill.db"
    ledger, gate = tmp_path / "ledger.jsonl", tmp_path / "gate"
    items = [0, 1, 2, 3, 4, 5]
    job = {
        "ledger": str(ledger),
        "gate": str(gate),
        "hold": 3,
        "items": items,
        "concurrency": 2,
    }
    seed = SQLiteStore(store_path)
    Runtime(seed).start(batch_flows.map_job, job, execution_id="kill-map")
    seed.close()

    first = start_worker(store_path, "kill-map", tmp_path / "w1.log")
    try:
        others = {f"map-item-{i}" for i in items if i != 3}
        # Every item but 3 is recorded finished while item 3's body is held mid-step.
        wait_until(lambda: finished_items(store_path, "kill-map") >= others, "items to finish")
        wait_until(lambda: read_ledger(ledger)[(3, "start")] == 1, "item 3 to start")
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=WAIT_S) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    gate.touch()
    assert read_ledger(ledger)[(3, "effect")] == 0

    second = start_worker(store_path, "kill-map", tmp_path / "w2.log")
    assert second.wait(timeout=WAIT_S + 30) == 0, (tmp_path / "w2.log").read_text()

    store = SQLiteStore(store_path)
    rt = Runtime(store)
    assert rt.get("kill-map").status is ExecutionStatus.SUCCEEDED
    assert rt.result("kill-map") == [x * x for x in items]
    store.close()
    counts = read_ledger(ledger)
    # Finished items never ran again; item 3 (killed mid-body, at-least-once) began twice
    # and had its effect once.
    assert {i: counts[(i, "start")] for i in items} == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1, 5: 1}
    assert {i: counts[(i, "effect")] for i in items} == dict.fromkeys(items, 1)
