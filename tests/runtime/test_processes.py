"""Real ``durable worker`` processes on one SQLite file: kill -9, SIGTERM, two workers.

The ledger (see ``rt_flows``) counts real executions of step bodies; the journal says what
the engine believes. A crash may repeat a body only where the semantics allow it (an
at-least-once step interrupted before its checkpoint); it must never repeat a checkpointed
step, never re-run an interrupted at-most-once attempt, and two workers must never run one
execution at the same time.
"""

from __future__ import annotations

import itertools
import os
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from durable_core import ExecutionStatus, OperationStatus, Runtime, RuntimeOptions
from durable_core.stores.sqlite import SQLiteStore

from .conftest import WAIT_S, Workers, read_ledger, wait_until


@contextmanager
def runtime(store_path: Path) -> Iterator[Runtime]:
    store = SQLiteStore(str(store_path))
    try:
        yield Runtime(store, options=RuntimeOptions(allowed_modules=("rt_flows",)))
    finally:
        store.close()


def started(ledger: Path, step: int, attempt: int = 1) -> bool:
    return any(
        e["kind"] == "start" and e["step"] == step and e["attempt"] == attempt
        for e in read_ledger(ledger)
    )


def count(ledger: Path, kind: str) -> Counter[Any]:
    return Counter(e["step"] for e in read_ledger(ledger) if e["kind"] == kind)


def logged(workers: Workers, index: int, text: str) -> bool:
    return text in workers.log(index)


def kill_9(proc: Any) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=WAIT_S) == -signal.SIGKILL


def test_kill_9_between_steps_never_repeats_a_checkpointed_step(
    workers: Workers, flows: Any, store_path: Path, tmp_path: Path
) -> None:
    ledger, gate = tmp_path / "ledger.jsonl", tmp_path / "gate"
    job = flows.Job(ledger=str(ledger), steps=4, hold_step=3, gate=str(gate))
    with runtime(store_path) as rt:
        rt.start("rt_flows:steps", job, execution_id="kill-1")

    first = workers.start(lease_ttl=1)
    # Steps 1 and 2 are checkpointed before step 3's body can start; it holds there.
    wait_until(lambda: started(ledger, 3), "step 3 to start in the first worker")
    kill_9(first)
    gate.touch()
    second = workers.start("--until-idle", lease_ttl=1)
    assert second.wait(timeout=WAIT_S) == 0, workers.log()

    with runtime(store_path) as rt:
        ex = rt.get("kill-1")
        assert ex.status is ExecutionStatus.SUCCEEDED, ex
        assert rt.result("kill-1") == [1, 2, 3, 4]
        assert [(o.name, o.status) for o in rt.operations("kill-1")] == [
            (f"step-{k}", OperationStatus.SUCCEEDED) for k in (1, 2, 3, 4)
        ]
    assert count(ledger, "effect") == {1: 1, 2: 1, 3: 1, 4: 1}
    # Step 3 was interrupted before its checkpoint (at-least-once): its body began twice,
    # but its effect happened once; steps 1 and 2 were never re-run.
    assert count(ledger, "start") == {1: 1, 2: 1, 3: 2, 4: 1}
    pids = {e["step"]: e["pid"] for e in read_ledger(ledger) if e["kind"] == "effect"}
    assert pids[1] == pids[2] == first.pid
    assert pids[3] == pids[4] == second.pid


def test_kill_9_inside_an_at_most_once_step_does_not_rerun_the_attempt(
    workers: Workers, flows: Any, store_path: Path, tmp_path: Path
) -> None:
    ledger, gate = tmp_path / "ledger.jsonl", tmp_path / "never-opened"
    with runtime(store_path) as rt:
        rt.start(
            "rt_flows:charge_once",
            flows.Job(ledger=str(ledger), gate=str(gate)),
            execution_id="amo-1",
        )

    first = workers.start(lease_ttl=1)
    wait_until(lambda: started(ledger, 1, attempt=1), "attempt 1 to start")
    kill_9(first)
    second = workers.start("--until-idle", lease_ttl=1)
    assert second.wait(timeout=WAIT_S) == 0, workers.log()

    with runtime(store_path) as rt:
        assert rt.get("amo-1").status is ExecutionStatus.SUCCEEDED
        assert rt.result("amo-1") == "charged on attempt 2"
        (op,) = rt.operations("amo-1")
        assert (op.name, op.status, op.attempt) == ("charge", OperationStatus.SUCCEEDED, 2)
    entries = read_ledger(ledger)
    starts = Counter(e["attempt"] for e in entries if e["kind"] == "start")
    assert starts == {1: 1, 2: 1}  # attempt 1 counted as interrupted, never re-run
    assert [(e["attempt"], e["pid"]) for e in entries if e["kind"] == "effect"] == [(2, second.pid)]


def test_sigterm_finishes_the_running_invocation_and_exits_0(
    workers: Workers, flows: Any, store_path: Path, tmp_path: Path
) -> None:
    ledger, gate = tmp_path / "ledger.jsonl", tmp_path / "gate"
    job = flows.Job(ledger=str(ledger), steps=2, hold_step=1, gate=str(gate), wait_s=3600)
    with runtime(store_path) as rt:
        rt.start("rt_flows:steps", job, execution_id="term-1")

    worker = workers.start()
    wait_until(lambda: started(ledger, 1), "the slow step to start")
    worker.send_signal(signal.SIGTERM)
    wait_until(lambda: "stop requested" in workers.log(), "the worker to note the SIGTERM")
    assert worker.poll() is None  # still inside the step: it does not abandon it
    gate.touch()
    assert worker.wait(timeout=WAIT_S) == 0, workers.log()

    assert count(ledger, "effect") == {1: 1}
    with runtime(store_path) as rt:
        ex = rt.get("term-1")
        assert ex.status is ExecutionStatus.RUNNING
        assert ex.lease_owner is None  # released: another worker may resume it at once
        assert ex.waiting_for is not None
        assert "pause" in ex.waiting_for
        assert [(o.name, o.status) for o in rt.operations("term-1")] == [
            ("step-1", OperationStatus.SUCCEEDED),
            ("pause", OperationStatus.STARTED),
        ]


@pytest.mark.slow
@pytest.mark.parametrize("concurrency", [1, 4])
def test_two_workers_never_run_one_execution_at_once(
    workers: Workers, flows: Any, store_path: Path, tmp_path: Path, concurrency: int
) -> None:
    """Also with several loops per worker process (``--concurrency``)."""
    ledger = tmp_path / "ledger.jsonl"
    n = 30
    ids = [f"pair-{i:02d}" for i in range(n)]
    SQLiteStore(str(store_path)).close()  # create the file before the workers race to
    loops = ("--concurrency", str(concurrency), "--batch", "2")  # small claims: both get work
    procs = [workers.start(*loops, name="a"), workers.start(*loops, name="b")]
    for i in range(2):  # both poll before there is work, so both get a share
        wait_until(partial(logged, workers, i, "worker started"), f"worker {i} to start")
    with runtime(store_path) as rt:
        for eid in ids:  # a 1 s durable wait after step 1 hands executions between workers
            rt.start("rt_flows:steps", flows.Job(ledger=str(ledger), wait_s=1), execution_id=eid)

    def all_done() -> bool:
        with runtime(store_path) as rt:
            return all(rt.get(eid).status.is_terminal for eid in ids)

    wait_until(all_done, "every execution to finish", timeout=60)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    assert [proc.wait(timeout=WAIT_S) for proc in procs] == [0, 0], workers.log()

    entries = [e for e in read_ledger(ledger) if e["kind"] == "effect"]
    per_step = Counter((e["eid"], e["step"]) for e in entries)
    assert per_step == {(eid, k): 1 for eid in ids for k in (1, 2, 3)}
    assert all(e["attempt"] == 1 for e in entries)
    for eid in ids:  # one execution's bodies never overlap in time, whichever worker ran them
        spans = sorted((e["t0"], e["t1"], e["pid"]) for e in entries if e["eid"] == eid)
        for (_, end, pid_a), (start, _, pid_b) in itertools.pairwise(spans):
            assert end <= start, f"{eid}: bodies overlap in workers {pid_a} and {pid_b}"
    assert {e["pid"] for e in entries} == {p.pid for p in procs}  # both did real work

    with runtime(store_path) as rt:
        for eid in ids:
            ex = rt.get(eid)
            assert ex.status is ExecutionStatus.SUCCEEDED, ex
            assert rt.result(eid) == [1, 2, 3]
            ops = rt.operations(eid)  # no record lost or doubled by a stale writer
            assert [(o.name, o.status, o.attempt) for o in ops] == [
                ("step-1", OperationStatus.SUCCEEDED, 1),
                ("pause", OperationStatus.SUCCEEDED, 0),
                ("step-2", OperationStatus.SUCCEEDED, 1),
                ("step-3", OperationStatus.SUCCEEDED, 1),
            ]
            assert ex.fence >= 2
            assert ex.lease_owner is None
