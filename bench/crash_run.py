"""One crash-harness run: an execution driven by successive workers, killed as planned.

Used by ``bench/crash_harness.py`` (see its docstring for what the harness does). A
:class:`Run` starts the execution in its own directory, runs ``bench/crash_worker.py``
processes on it one after another, kills them (``SIGKILL``) at the planned boundary or
time, delivers the order saga's shipper callback, and scores the end state with
``crash_checks.compare`` against the scenario's uninterrupted :class:`Reference`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty, Queue
from threading import Thread
from typing import IO, Any

from crash_checks import Outcome, compare, kill_position, read_outcome
from crash_checks import waiting_callback as callback_token

from durable_core import Runtime, RuntimeOptions
from durable_core.errors import ExecutionNotFoundError
from durable_core.stores.sqlite import SQLiteStore

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SHIPMENT = {"tracking": "VNP-20260314-001", "carrier": "VNPost"}
AGAIN = 0.5
"""Probability that a resumed worker is killed too (until ``--max-kills``)."""
WORKER_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Scenario:
    """One saga run: which function, which input, and what the shipper does."""

    name: str
    function: str
    event: dict[str, Any]
    ledger: str
    callback: str | None = None
    """``succeed`` or ``fail``: delivered when the order saga waits for its shipper."""


@dataclass(frozen=True)
class Plan:
    """What one run does: which scenario, where its first kill lands."""

    index: int
    scenario: Scenario
    kind: str
    """``boundary``, ``random``, or ``none`` (the uninterrupted reference)."""
    first: float = -1
    """The first kill: a boundary index, or seconds after the worker's claim."""
    latency_ms: float = 0.0
    early_callback: bool = False


@dataclass
class Reference:
    """The uninterrupted run of a scenario."""

    outcome: Outcome
    boundaries: int
    active_s: float
    requests: int


@dataclass
class RunResult:
    """What one run did and the counts it scored."""

    plan: Plan
    counts: Counter[str]
    kills: list[str] = field(default_factory=list)
    repeated_requests: int = 0
    boundaries: int = 0
    active_s: float = 0.0
    requests: int = 0
    notes: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    directory: Path | None = None


class Run:
    """One execution driven by successive workers until it finished."""

    def __init__(
        self, plan: Plan, directory: Path, ref: Reference | None, args: argparse.Namespace
    ) -> None:
        self.plan, self.dir, self.ref, self.args = plan, directory, ref, args
        self.store = directory / "durable.sqlite3"
        self.ledger = directory / plan.scenario.ledger
        self.env = {
            **_base_env(),
            "DURABLE_STORE": str(self.store),
            "TOUR_LEDGER": str(directory / "tour_ledger.sqlite3"),
            "ORDER_LEDGER": str(directory / "order_ledger.sqlite3"),
        }
        self.eid = f"crash-{plan.scenario.name}"
        self.rng = random.Random(f"{args.seed}:{plan.index}:again")
        self.trace: list[dict[str, Any]] = []
        self.result = RunResult(plan, Counter())
        self.delivered = False
        self.errors = 0

    def execute(self) -> RunResult:
        """Start the execution, run workers (killing them as planned), then score the run."""
        self.dir.mkdir(parents=True, exist_ok=True)
        scenario = self.plan.scenario
        store = SQLiteStore(self.store)
        try:
            rt = Runtime(store, options=RuntimeOptions(allowed_modules=("examples",)))
            rt.start(scenario.function, scenario.event, execution_id=self.eid)
        finally:
            store.close()
        pending: float | None = self.plan.first if self.plan.kind != "none" else None
        for n in range(self.args.max_kills + 8):
            ex = _execution(self.store, self.eid)
            if ex is None or ex["terminal"]:
                break
            if not ex["due"]:
                if scenario.callback and not self.delivered and self._deliver():
                    continue
                self.result.notes.append("RUNNING, not due, nothing to deliver")
                break
            pending = self._worker(n, pending)
        outcome = read_outcome(self.store, self.ledger, self.eid)
        self.result.outcome = outcome
        self.result.repeated_requests = outcome.repeated_requests
        self.result.directory = self.dir
        if self.ref is not None:
            self.result.counts = compare(outcome, self.ref.outcome, self.trace, self.errors)
        return self.result

    def _worker(self, n: int, pending: float | None) -> float | None:
        """Run one worker; kill it as planned; return the kill still pending afterwards."""
        boundary = self.plan.kind == "boundary" and pending is not None
        hold = int(pending) if boundary and pending is not None else -1
        latency = self.plan.latency_ms
        cmd = [sys.executable, str(HERE / "crash_worker.py"), "--store", str(self.store),
               "--hold", str(hold), "--latency-ms", str(latency),
               "--seed", str(self.plan.index * 100 + n)]  # fmt: skip
        if self.args.breaks:
            cmd += ["--break", self.args.breaks]
        log = (self.dir / f"worker-{n}.log").open("wb")
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True
        )
        lines: Queue[tuple[float, str] | None] = Queue()
        Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        mine: list[dict[str, Any]] = []
        claimed = last = kill_at = None
        killed = timed_out = False
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        try:
            while True:
                until = min(deadline, kill_at if kill_at is not None else deadline)
                try:
                    item = lines.get(timeout=max(0.0, until - time.monotonic()))
                except Empty:
                    if kill_at is None:
                        timed_out = True  # stuck: kill it, and it counts as a worker error
                        deadline = time.monotonic() + WORKER_TIMEOUT_S
                    else:
                        killed = True  # the planned random point
                    kill_at = None
                    proc.send_signal(signal.SIGKILL)
                    continue
                if item is None:
                    break
                t, line = item
                if not line.startswith("{"):
                    continue
                ev = json.loads(line)
                mine.append(ev)
                self.trace.append(ev)
                last = t
                if ev["k"] == "claim" and claimed is None:
                    claimed = t
                    if pending is not None and not boundary:
                        kill_at = t + pending
                if ev.get("hold"):
                    killed = True
                    proc.send_signal(signal.SIGKILL)
                if self._early_pickup(ev):
                    self._deliver()
            rc = proc.wait(timeout=WORKER_TIMEOUT_S)
        finally:
            log.close()
        active = (last - claimed) if claimed is not None and last is not None else 0.0
        count = sum(1 for ev in mine if "b" in ev)
        self.result.boundaries += count
        self.result.active_s += active
        self.result.requests += sum(1 for ev in mine if ev["k"] == "ledger" and ev["w"] == "before")
        if killed and rc == -signal.SIGKILL:
            self.result.kills.append(kill_position(self.trace, mine))
            return self._next_kill()
        if timed_out or rc != 0:
            self.errors += 1
            tail = (self.dir / f"worker-{n}.log").read_text(errors="replace")[-600:]
            self.result.notes.append(f"worker {n} exited {rc} (timed out: {timed_out}): {tail}")
        if pending is None:
            return None
        return pending - (count if boundary else active)

    def _next_kill(self) -> float | None:
        """After a kill: maybe kill the next worker too, at a random boundary or time."""
        if len(self.result.kills) >= self.args.max_kills or self.rng.random() >= AGAIN:
            return None
        ref = self.ref
        assert ref is not None
        if self.plan.kind == "boundary":
            left = ref.boundaries - self.result.boundaries  # about what the saga has left
            return float(self.rng.randrange(max(1, left)))
        return self.rng.uniform(0, ref.active_s + ref.requests * self.plan.latency_ms / 1000)

    def _early_pickup(self, ev: dict[str, Any]) -> bool:
        return (
            self.plan.early_callback
            and not self.delivered
            and ev["k"] == "ledger"
            and ev["w"] == "after"
            and (ev["svc"], ev["act"]) == ("shipping", "pickup")
        )

    def _deliver(self) -> bool:
        """Play the shipper: complete the saga's callback if it waits for one."""
        token = callback_token(self.store, self.eid, "shipper-confirmation")
        if token is None:
            return False
        store = SQLiteStore(self.store)
        try:
            rt = Runtime(store)
            if self.plan.scenario.callback == "succeed":
                rt.send_callback_success(token, SHIPMENT)
            else:
                rt.send_callback_failure(token, "no truck available", error_type="NoTruck")
        finally:
            store.close()
        self.delivered = True
        return True


def _base_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def _pump(stream: IO[str], lines: Queue[tuple[float, str] | None]) -> None:
    for line in stream:
        lines.put((time.monotonic(), line))
    lines.put(None)


def _execution(path: Path, eid: str) -> dict[str, bool] | None:
    store = SQLiteStore(path)
    try:
        ex = store.get_execution(eid)
    except ExecutionNotFoundError:
        return None
    finally:
        store.close()
    due = ex.wake_at is not None and ex.wake_at <= datetime.now(UTC)
    return {"terminal": ex.status.is_terminal, "due": due}
