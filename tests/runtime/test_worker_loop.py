"""The Worker loop in-process, on a MemoryStore and a virtual clock.

These pin the loop's contract (idle detection, stopping between invocations, recovery of a
dead worker's lease, signal handling) without processes; ``test_processes.py`` proves the
same things with real ``durable worker`` processes on SQLite.
"""

from __future__ import annotations

import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable_core import (
    DurableContext,
    ExecutionStatus,
    MemoryStore,
    Runtime,
    StepContext,
    StoreError,
    ValidationError,
    durable,
)
from durable_core.records import Lease
from durable_core.runtime.worker import Worker


class Clock:
    """Virtual time; optionally jumps forward after ``jump_after`` reads (a time-lapse)."""

    def __init__(self) -> None:
        self.t = datetime(2026, 1, 1, tzinfo=UTC)
        self.reads = 0
        self.jump_after: int | None = None
        self.jump = timedelta(0)

    def now(self) -> datetime:
        self.reads += 1
        if self.jump_after is not None and self.reads >= self.jump_after:
            self.t += self.jump
            self.jump_after = None
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


calls: dict[str, int] = {}
stop_from_step = threading.Event()


@durable
def two_steps_and_a_day(ctx: DurableContext, n: int) -> int:
    def first(sc: StepContext) -> int:
        calls[sc.execution_id] = calls.get(sc.execution_id, 0) + 1
        return n

    a = ctx.step("first", first)
    ctx.wait("a-day", timedelta(days=1))
    return a + ctx.step("second", lambda sc: 1)


@durable
def stops_the_worker(ctx: DurableContext, n: int) -> int:
    def body(sc: StepContext) -> int:
        calls[sc.execution_id] = calls.get(sc.execution_id, 0) + 1
        stop_from_step.set()
        return n

    return ctx.step("body", body)


@durable
def signals_itself(ctx: DurableContext, n: int) -> int:
    def body(sc: StepContext) -> int:
        calls[sc.execution_id] = calls.get(sc.execution_id, 0) + 1
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while this invocation runs
        return n

    return ctx.step("body", body)


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    stop_from_step.clear()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def runtime(clock: Clock, store: Any = None) -> Runtime:
    return Runtime(store or MemoryStore(), clock=clock, worker_id="me")


def test_until_idle_runs_due_executions_and_returns(clock: Clock) -> None:
    rt = runtime(clock)
    ids = [rt.start(two_steps_and_a_day, i, execution_id=f"e{i}").id for i in range(5)]
    worker = Worker(rt, poll_interval=0.01)

    assert worker.run(until_idle=True) == 5
    assert all(rt.get(i).waiting_for and "a-day" in (rt.get(i).waiting_for or "") for i in ids)
    assert worker.run(until_idle=True) == 0  # nothing is due before the day has passed

    clock.t += timedelta(days=1)
    assert worker.run(until_idle=True) == 5
    assert [rt.get(i).status for i in ids] == [ExecutionStatus.SUCCEEDED] * 5
    assert [rt.result(i) for i in ids] == [1, 2, 3, 4, 5]
    assert calls == dict.fromkeys(ids, 1)
    assert worker.executions_run == 10


def test_batch_bounds_a_round_but_not_the_run(clock: Clock) -> None:
    rt = runtime(clock)
    for i in range(7):
        rt.start(stops_the_worker, i, execution_id=f"e{i}")

    assert Worker(rt, poll_interval=0.01, batch=2).run(until_idle=True) == 7


def test_a_stop_during_an_invocation_finishes_it_and_runs_nothing_more(clock: Clock) -> None:
    rt = runtime(clock)
    for i in range(3):
        rt.start(stops_the_worker, i, execution_id=f"e{i}")

    ran = Worker(rt, poll_interval=0.01).run(stop_from_step)

    assert ran == 1
    statuses = sorted(rt.get(f"e{i}").status.value for i in range(3))
    assert statuses == ["RUNNING", "RUNNING", "SUCCEEDED"]
    assert sum(calls.values()) == 1
    assert all(rt.get(f"e{i}").lease_owner is None for i in range(3))  # nothing stranded


def test_a_set_stop_event_runs_nothing(clock: Clock) -> None:
    rt = runtime(clock)
    rt.start(stops_the_worker, 1, execution_id="e1")
    stop = threading.Event()
    stop.set()

    assert Worker(rt).run(stop) == 0
    assert calls == {}


def test_until_idle_waits_for_a_dead_workers_lease_then_recovers(clock: Clock) -> None:
    store = MemoryStore()
    rt = runtime(clock, store)
    rt.start(two_steps_and_a_day, 41, execution_id="orphan")
    dead: Lease | None = store.acquire_lease(
        "orphan", "dead-worker", clock.now(), timedelta(seconds=60)
    )
    assert dead is not None
    # The worker polls (reading the clock each time); after a few polls the lease expires.
    clock.jump_after = clock.reads + 6
    clock.jump = timedelta(seconds=61)

    ran = Worker(rt, poll_interval=0.001).run(until_idle=True)

    assert ran == 1
    ex = rt.get("orphan")
    assert ex.waiting_for is not None
    assert "a-day" in ex.waiting_for
    assert ex.fence == dead.fence + 1
    assert calls == {"orphan": 1}


class FlakyStore(MemoryStore):
    """A MemoryStore whose first ``claim_due`` fails, like a database briefly locked."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def claim_due(self, owner: str, now: datetime, ttl: timedelta, limit: int) -> list[Lease]:
        if self.failures:
            self.failures -= 1
            raise StoreError("database is locked")
        return super().claim_due(owner, now, ttl, limit)


def test_a_failing_tick_is_logged_and_retried_when_running_forever(clock: Clock) -> None:
    rt = runtime(clock, FlakyStore())
    rt.start(stops_the_worker, 5, execution_id="e")

    assert Worker(rt, poll_interval=0.001).run(stop_from_step) == 1
    assert rt.result("e") == 5


def test_a_failing_tick_raises_with_until_idle(clock: Clock) -> None:
    rt = runtime(clock, FlakyStore())
    rt.start(stops_the_worker, 5, execution_id="e")

    with pytest.raises(StoreError, match="locked"):
        Worker(rt, poll_interval=0.001).run(until_idle=True)


def test_run_forever_stops_cleanly_on_sigterm_and_restores_handlers(clock: Clock) -> None:
    rt = runtime(clock)
    for i in range(3):
        rt.start(signals_itself, i, execution_id=f"e{i}")
    before = signal.getsignal(signal.SIGTERM)

    assert Worker(rt, poll_interval=0.01).run_forever() == 0

    assert sum(calls.values()) == 1  # the signalled invocation finished; no other started
    finished = [rt.get(f"e{i}") for i in range(3) if rt.get(f"e{i}").status.is_terminal]
    assert len(finished) == 1
    assert finished[0].status is ExecutionStatus.SUCCEEDED
    assert all(rt.get(f"e{i}").lease_owner is None for i in range(3))
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"poll_interval": 0}, "poll_interval"),
    ({"batch": 0}, "batch"),
    ({"concurrency": 0}, "concurrency"),
    ({"concurrency": True}, "concurrency"),
    ({"concurrency": 2.5}, "concurrency"),
])  # fmt: skip
def test_bad_options_are_refused(clock: Clock, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        Worker(runtime(clock), **kwargs)


# --- concurrency ------------------------------------------------------------------------------

together = threading.Barrier(4, timeout=10)


@durable
def meets_three_others(ctx: DurableContext, n: int) -> int:
    def body(sc: StepContext) -> int:
        with lock:
            calls[sc.execution_id] = calls.get(sc.execution_id, 0) + 1
        if n < 4:
            together.wait()  # only passes if four invocations run at the same time
        return n

    return ctx.step("body", body)


lock = threading.Lock()


def test_concurrent_loops_run_executions_at_once_and_each_once(clock: Clock) -> None:
    together.reset()
    rt = runtime(clock)
    ids = [rt.start(meets_three_others, i, execution_id=f"e{i}").id for i in range(20)]

    worker = Worker(rt, poll_interval=0.001, concurrency=4)
    assert worker.run(until_idle=True) == 20

    assert [rt.result(i) for i in ids] == list(range(20))
    assert calls == dict.fromkeys(ids, 1)
    assert worker.executions_run == 20


def test_a_stop_with_concurrent_loops_strands_nothing(clock: Clock) -> None:
    rt = runtime(clock)
    for i in range(12):
        rt.start(stops_the_worker, i, execution_id=f"e{i}")

    ran = Worker(rt, poll_interval=0.001, concurrency=3).run(stop_from_step)

    assert 1 <= ran <= 3  # the loops finish what they run, then start nothing more
    done = [f"e{i}" for i in range(12) if rt.get(f"e{i}").status.is_terminal]
    assert len(done) == ran == sum(calls.values())
    assert all(rt.get(f"e{i}").lease_owner is None for i in range(12))


def test_a_failing_tick_in_one_loop_stops_all_with_until_idle(clock: Clock) -> None:
    rt = runtime(clock, FlakyStore())
    rt.start(stops_the_worker, 5, execution_id="e")

    with pytest.raises(StoreError, match="locked"):
        Worker(rt, poll_interval=0.001, concurrency=3).run(until_idle=True)
    assert rt.get("e").lease_owner is None
