"""Liveness on real worker processes: a step that kills its worker, and a hung step at
SIGTERM.

Workers are ``python -m durable_core.cli worker`` with tests/saga as their current
directory (the CLI puts it on ``sys.path``), on a temp SQLite store, with a 1 s lease so a
dead worker's lease expires quickly. Every wait is a bounded wait for a process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import crash_flows
import pytest

from durable_core import ExecutionStatus, Runtime
from durable_core.stores.sqlite import SQLiteStore
from saga import SagaStatus, saga_status

HERE = Path(__file__).resolve().parent
WAIT_S = 60.0
CAP = 2


def worker(store: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "durable_core.cli", "--store", str(store), "worker",
        "--lease-ttl", "1", "--poll", "0.05", *args,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        cmd, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def entries(ledger: Path) -> list[dict[str, Any]]:
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_text().splitlines()]


def test_a_step_that_kills_its_worker_ends_the_saga_compensated_after_the_cap(
    tmp_path: Path,
) -> None:
    store, ledger = tmp_path / "durable.sqlite3", tmp_path / "ledger.jsonl"
    rt = Runtime(SQLiteStore(store))
    rt.start(crash_flows.crash_loop, crash_flows.Trip(ledger=str(ledger)), execution_id="loop")
    rt.store.close()

    codes: list[int] = []
    for _ in range(CAP + 3):  # each worker dies in the step, until the cap stops it
        proc = worker(store, "--until-idle", "--max-recovery-attempts", str(CAP))
        out, _ = proc.communicate(timeout=WAIT_S)
        codes.append(proc.returncode)
        if proc.returncode == 0:
            break
        assert proc.returncode == crash_flows.CRASH_EXIT_CODE, out

    assert codes == [crash_flows.CRASH_EXIT_CODE] * (CAP + 1) + [0]
    runs = [(e["kind"], e["step"]) for e in entries(ledger)]
    assert runs == [("do", "flight")] + [("do", "hotel")] * (CAP + 1) + [("undo", "flight")]
    final = Runtime(SQLiteStore(store))
    try:
        ex = final.get("loop")
        assert ex.status is ExecutionStatus.FAILED
        assert ex.recovery_attempts == 0
        outcome = saga_status(final, "loop")
        assert outcome.status is SagaStatus.COMPENSATED
        assert outcome.compensated == ["flight"]
        [hotel] = [op for op in final.operations("loop") if op.name == "hotel"]
        assert hotel.error is not None
        assert hotel.error.type == "durable_core.errors.RecoveryLimitError"
        assert f"recovered {CAP + 1} times in a row" in hotel.error.message
    finally:
        final.store.close()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_sigterm_stops_a_worker_with_a_hung_step_within_the_grace(
    tmp_path: Path, concurrency: int
) -> None:
    store, ledger = tmp_path / "durable.sqlite3", tmp_path / "ledger.jsonl"
    rt = Runtime(SQLiteStore(store))
    rt.start(crash_flows.hangs, crash_flows.Trip(ledger=str(ledger)), execution_id="hung")
    rt.store.close()

    proc = worker(store, "--shutdown-grace", "0.5", "--concurrency", str(concurrency))
    deadline = time.monotonic() + WAIT_S
    while not entries(ledger):  # a bounded wait for the step to start in the worker
        assert time.monotonic() < deadline, "the step never started"
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.02)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the worker did not exit within 10 s of SIGTERM with a hung step")
    took = time.monotonic() - signalled

    assert proc.returncode == 1, out
    assert took < 5, took
    assert "shutdown grace passed" in out
    check = SQLiteStore(store)
    try:
        ex = check.get_execution("hung")
        assert ex.status is ExecutionStatus.RUNNING
        assert ex.lease_owner is not None  # left to expire, never released under the body
        assert check.load_operations("hung") == []
    finally:
        check.close()
