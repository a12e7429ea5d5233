"""Durable functions run by real worker processes in the multi-process tests.

Imported as the top-level module ``rt_flows`` by the test process and by the worker
subprocesses (both put this directory on ``sys.path``), so executions record the same
function name ``rt_flows:<name>`` on both sides.

Every step body appends JSON lines to a *ledger* file, one ``os.write`` per line with
``O_APPEND`` (atomic for small writes on Linux, across processes): a ``start`` line when the
body begins and an ``effect`` line when it has done its side effect. Counting ``effect``
lines counts real executions of a body, whatever the journal says.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from tenacity import stop_after_attempt, wait_fixed

from durable_core import (
    DurableContext,
    RetryPolicy,
    StepConfig,
    StepContext,
    StepSemantics,
    durable,
)

GATE_TIMEOUT_S = 60.0


class Job(BaseModel):
    """The event of every flow here."""

    ledger: str
    steps: int = 3
    hold_step: int | None = None
    """Step whose body waits for ``gate`` to exist before doing its effect."""
    gate: str | None = None
    wait_s: float | None = None
    """A durable wait of this many seconds before step 2 (hands the execution between
    workers)."""


def record(ledger: str, **fields: Any) -> None:
    """Append one JSON line to the ledger atomically."""
    line = (json.dumps(fields, sort_keys=True) + "\n").encode()
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def wait_for_gate(gate: str) -> None:
    """Block until the test creates ``gate`` (bounded, so a lost test never hangs us)."""
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while not Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} never opened")
        time.sleep(0.01)


def _body(job: Job, k: int, sc: StepContext) -> int:
    t0 = time.monotonic_ns()
    common = {"eid": sc.execution_id, "step": k, "attempt": sc.attempt, "pid": os.getpid()}
    record(job.ledger, kind="start", t0=t0, **common)
    if job.hold_step == k and job.gate is not None:
        wait_for_gate(job.gate)
    record(job.ledger, kind="effect", t0=t0, t1=time.monotonic_ns(), **common)
    return k


@durable
def steps(ctx: DurableContext, job: Job) -> list[int]:
    """``job.steps`` steps in a row, optionally with a durable wait before step 2."""
    done: list[int] = []
    for k in range(1, job.steps + 1):
        if k == 2 and job.wait_s:
            ctx.wait("pause", job.wait_s)

        def body(sc: StepContext, k: int = k) -> int:
            return _body(job, k, sc)

        done.append(ctx.step(f"step-{k}", body))
    return done


AT_MOST_ONCE = StepConfig(
    semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
    retry=RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(0.05)),
)


@durable
def charge_once(ctx: DurableContext, job: Job) -> str:
    """One at-most-once step whose first attempt blocks on the gate (the test kills it)."""

    def charge(sc: StepContext) -> str:
        t0 = time.monotonic_ns()
        common = {"eid": sc.execution_id, "step": 1, "attempt": sc.attempt, "pid": os.getpid()}
        record(job.ledger, kind="start", t0=t0, **common)
        if sc.attempt == 1 and job.gate is not None:
            wait_for_gate(job.gate)
        record(job.ledger, kind="effect", t0=t0, t1=time.monotonic_ns(), **common)
        return f"charged on attempt {sc.attempt}"

    return ctx.step("charge", charge, AT_MOST_ONCE)
