"""Real processes on the SQLite store: a worker killed (-9) in the middle of the tour saga's
forward run or rollback, the runnable examples, and the ``durable-saga`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from saga_helpers import EXPECTED_ROLLBACK

from durable_core import ExecutionStatus, Runtime
from durable_core.stores.sqlite import SQLiteStore
from examples.order_processing.services import effects as order_effects
from examples.tour_booking.providers import Tour, effects, ledger_rows
from examples.tour_booking.saga import book_tour

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
WAIT_S = 60.0


def wait_until(
    predicate: Callable[[], Any], what: str, *, log: Path | None = None, timeout: float = WAIT_S
) -> Any:
    """Poll something another process produces; fail after ``timeout`` (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            output = log.read_text() if log is not None and log.exists() else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{output}")
        time.sleep(0.02)


def run(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path, ledger: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DURABLE_STORE": str(tmp_path / "durable.sqlite3"),
        "TOUR_LEDGER": str(ledger),
        "ORDER_LEDGER": str(tmp_path / "order_ledger.sqlite3"),
    }


# --- kill -9 at checkpoint boundaries ---------------------------------------------------------

REQUESTS = ["airline:book", "hotel:book", "cars:reject", "hotel:cancel", "airline:cancel"]
HOLDS = [f"{request}:{when}" for request in REQUESTS for when in ("before", "after")]
"""Every provider request of the tour saga with a failing car, forward and rollback, frozen
just before it (right after the saga's previous checkpoint) and just after it (the effect
happened, the saga has not checkpointed it yet)."""


@pytest.mark.parametrize("hold", HOLDS)
def test_a_worker_killed_mid_saga_leaves_the_same_ledger(
    hold: str, env: dict[str, str], tmp_path: Path
) -> None:
    store = Path(env["DURABLE_STORE"])
    rt = Runtime(SQLiteStore(store))
    rt.start(book_tour, Tour(fail_car=True), execution_id="tour-kill")
    rt.store.close()
    mark = tmp_path / "held"
    log = (tmp_path / "held.log").open("wb")
    held = subprocess.Popen(
        [sys.executable, str(HERE / "kill_worker.py"), "--store", str(store),
         "worker", "--lease-ttl", "1", "--poll", "0.05"],
        cwd=ROOT, env={**env, "TOUR_HOLD": hold, "TOUR_HOLD_MARK": str(mark)},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until(mark.exists, f"the worker to reach {hold}", log=tmp_path / "held.log")
    finally:
        held.kill()  # SIGKILL: no cleanup, the lease stays held until it expires
        held.wait(timeout=WAIT_S)
        log.close()

    recovery = run(
        "-m", "durable_core.cli", "--store", str(store), "worker", "--until-idle",
        "--lease-ttl", "1", "--poll", "0.05", env=env,
    )  # fmt: skip

    assert recovery.returncode == 0, recovery.stderr
    final = SQLiteStore(store)
    try:
        assert final.get_execution("tour-kill").status is ExecutionStatus.FAILED
    finally:
        final.close()
    assert effects("tour-kill") == EXPECTED_ROLLBACK["car"]
    repeated = [(r.provider, r.action) for r in ledger_rows("tour-kill") if r.duplicate]
    provider, action, when = hold.split(":")
    assert repeated == ([(provider, action)] if when == "after" else [])


# --- the examples, as a new user runs them ----------------------------------------------------


def test_the_tour_example_runs_end_to_end(env: dict[str, str]) -> None:
    done = run("-m", "examples.tour_booking", "--fail-car", env=env)

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "status: COMPENSATED (execution FAILED)" in out
    ledger = out[out.index("ledger ") :].splitlines()[1:6]
    assert [line.split()[:2] for line in ledger] == [
        ["airline", "book"],
        ["hotel", "book"],
        ["cars", "reject"],
        ["hotel", "cancel"],
        ["airline", "cancel"],
    ]
    assert len(out.splitlines()) <= 25
    execution_id = out.rsplit("status ", 1)[1].split()[0]
    status = run("-m", "saga.cli", "status", execution_id, "--json", env=env)
    assert status.returncode == 0, status.stderr
    outcome = json.loads(status.stdout)
    assert outcome["status"] == "compensated"
    assert [c["step"] for c in outcome["compensations"]] == ["book-hotel", "book-flight"]


def test_the_order_example_waits_for_the_shipper_who_confirms_by_cli(env: dict[str, str]) -> None:
    first = run("-m", "examples.order_processing", env=env)
    assert first.returncode == 0, first.stderr
    command = next(
        line.split()
        for line in first.stdout.splitlines()
        if line.split()[:1] and line.split()[0].endswith("durable") and "callback succeed" in line
    )
    execution_id = next(w for w in first.stdout.split() if w.startswith("order-"))

    token = command[command.index("succeed") + 1]
    payload = first.stdout.split("--payload ", 1)[1].splitlines()[0].strip("'")
    confirmed = run(
        "-m", "durable_core.cli", "callback", "succeed", token, "--payload", payload, env=env
    )
    assert confirmed.returncode == 0, confirmed.stderr
    worker = run("-m", "durable_core.cli", "worker", "--until-idle", "--poll", "0.05", env=env)
    assert worker.returncode == 0, worker.stderr

    status = run("-m", "saga.cli", "status", execution_id, env=env)
    assert "status: COMPLETED (execution SUCCEEDED)" in status.stdout


def test_cancelling_the_order_while_it_waits_for_the_shipper_refunds_and_releases(
    env: dict[str, str],
) -> None:
    """The issue's reproduction: before, FAILED with NonDeterminismError and nothing undone."""
    first = run("-m", "examples.order_processing", "--id", "order-cancel-1", env=env)
    assert first.returncode == 0, first.stderr
    cli = ("-m", "durable_core.cli")
    cancel = run(*cli, "cancel", "order-cancel-1", "--reason", "customer called", env=env)
    assert cancel.returncode == 0, cancel.stderr
    again = run(*cli, "cancel", "order-cancel-1", "--reason", "twice", env=env)
    assert again.returncode == 0 and "already requested" in again.stdout
    worker = run(*cli, "worker", "--until-idle", "--poll", "0.05", env=env)
    assert worker.returncode == 0, worker.stderr

    status = run("-m", "saga.cli", "status", "order-cancel-1", "--json", env=env)
    outcome = json.loads(status.stdout)
    assert (outcome["status"], outcome["execution_status"]) == ("compensated", "CANCELLED")
    assert outcome["cause"]["message"] == "customer called"
    assert outcome["not_undone"] == []
    landed = [f"{s}/{a}" for s, a, _ in order_effects("order-cancel-1")]
    assert landed.count("payments/refund") == 1
    assert landed.count("inventory/release") == 1
    assert landed.index("inventory/release") < landed.index("payments/refund")  # reverse order


def test_the_order_example_refunds_when_out_of_stock(env: dict[str, str]) -> None:
    done = run("-m", "examples.order_processing", "--out-of-stock", env=env)

    assert done.returncode == 0, done.stderr
    assert "status: COMPENSATED" in done.stdout
    assert "payments  refund" in done.stdout


# --- durable-saga on a parked saga --------------------------------------------------------------


def test_the_cli_shows_a_parked_saga_and_records_operator_decisions(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "SAGA_FLOWS_DIR": str(tmp_path)}
    started = run("-m", "durable_core.cli", "run", "saga_flows:parking", env=env, cwd=HERE)
    assert started.returncode == 0, started.stdout + started.stderr
    execution_id = started.stdout.split()[2]

    parked = run("-m", "saga.cli", "status", execution_id, env=env, cwd=HERE)
    assert "status: COMPENSATION_FAILED" in parked.stdout
    assert "PARKED: the undo of 'b'" in parked.stdout
    assert "NOT UNDONE: b, a" in parked.stdout

    no_reason = run("-m", "saga.cli", "skip", execution_id, env=env, cwd=HERE)
    assert no_reason.returncode == 2
    assert "--reason" in no_reason.stderr
    empty = run("-m", "saga.cli", "skip", execution_id, "--reason", " ", env=env, cwd=HERE)
    assert empty.returncode == 2
    assert "non-empty reason" in empty.stderr

    skipped = run(
        "-m", "saga.cli", "skip", execution_id, "--reason", "refunded by hand",
        "--actor", "ops-binh", "--run", env=env, cwd=HERE,
    )  # fmt: skip
    assert skipped.returncode == 0, skipped.stderr
    assert "status: PARTIALLY_COMPENSATED (execution FAILED)" in skipped.stdout
    assert "operator: skip 'b' by ops-binh: refunded by hand" in skipped.stdout

    again = run("-m", "saga.cli", "retry", execution_id, env=env, cwd=HERE)
    assert again.returncode == 2
    assert "is not parked" in again.stderr
    missing = run("-m", "saga.cli", "--store", str(tmp_path / "nope.db"), "status", "x", env=env)
    assert missing.returncode == 2
    assert "no store at" in missing.stderr
