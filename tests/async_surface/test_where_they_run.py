"""Where async durable functions run: AsyncRuntime on an app's loop, the AsyncWorker, the
threaded Worker, and the testing kit (runner and pytest plugin fixtures).

Waits here are real only inside step bodies (``asyncio.sleep``: the I/O an async worker
overlaps); timers pass on a virtual clock. Time bounds are loose: they only tell apart
"the bodies overlapped" from "they ran one after another".
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durable_core import (
    AsyncDurableContext,
    AsyncRuntime,
    AsyncWorker,
    ExecutionStatus,
    MemoryStore,
    Runtime,
    SQLiteStore,
    StepContext,
    Worker,
    durable,
)
from durable_core.errors import CallbackFailedError
from durable_core.testing import DurableTestRunner, VirtualClock

from . import async_flows
from .async_flows import IO_S, RUNS, fetch_two, remind, sync_double


@pytest.fixture(autouse=True)
def _fresh_runs() -> None:
    RUNS.clear()


def steps_ran(execution_ids: list[str], names: tuple[str, ...]) -> Counter[int]:
    """How many (execution, step) pairs ran how often: ``{1: n}`` is "each exactly once"."""
    return Counter(RUNS[(eid, name)] for eid in execution_ids for name in names)


@durable(name="async_surface:approval")
async def approval(ctx: AsyncDurableContext, what: str) -> dict[str, Any]:
    async def ask(sc: StepContext) -> str:
        async_flows.ran(sc)
        await asyncio.sleep(0)
        return what

    await ctx.step("ask", ask)
    cb = await ctx.create_callback("decision", heartbeat_timeout=3600)
    try:
        return {"what": what, "answer": await cb.result()}
    except CallbackFailedError as e:
        return {"what": what, "refused": str(e)}


def test_async_runtime_starts_signals_and_reads_executions_from_a_running_loop() -> None:
    rt = Runtime(MemoryStore(), clock=VirtualClock(), functions=[approval])
    art = AsyncRuntime(rt)

    async def app() -> dict[str, Any]:
        for eid in ("yes", "no", "never"):
            started = await art.start(approval, eid, execution_id=eid)
            assert started.status is ExecutionStatus.RUNNING
        assert await art.tick() == 3  # on this loop, each to its callback
        tokens = {}
        for eid in ("yes", "no", "never"):
            ops = await art.operations(eid)
            tokens[eid] = next(op.callback_id for op in ops if op.name == "decision")
            assert (await art.get(eid)).waiting_for == "callback 'decision'"
        await art.send_callback_heartbeat(tokens["yes"])
        await art.send_callback_success(tokens["yes"], "approved")
        await art.send_callback_failure(tokens["no"], "not now")
        await art.cancel("never", "withdrawn", actor="app")
        assert await art.tick() == 3
        return {
            "yes": await art.result("yes"),
            "no": await art.result("no"),
            "never": (await art.get("never")).status,
        }

    out = asyncio.run(app())

    assert out["yes"] == {"what": "yes", "answer": "approved"}
    assert out["no"]["refused"].endswith("not now")
    assert out["never"] is ExecutionStatus.CANCELLED
    assert steps_ran(["yes", "no", "never"], ("ask",)) == {1: 3}


def test_async_runtime_ticks_without_blocking_the_loop_and_drives_on_a_thread() -> None:
    rt = Runtime(MemoryStore(), functions=[fetch_two, sync_double])
    art = AsyncRuntime(rt)
    ids = [f"f-{i}" for i in range(10)]

    async def app() -> tuple[int, float, int]:
        for i, eid in enumerate(ids):
            await art.start(fetch_two, i, execution_id=eid)
        beats = 0

        async def heartbeat() -> None:
            nonlocal beats
            while True:
                await asyncio.sleep(IO_S / 10)
                beats += 1

        ticker = asyncio.ensure_future(heartbeat())
        start = time.monotonic()
        ran = await art.tick(limit=10)
        took = time.monotonic() - start
        ticker.cancel()
        ex = await art.run(sync_double, 21, execution_id="sync")  # on a thread
        assert ex.status is ExecutionStatus.SUCCEEDED
        assert await art.result("sync") == 42
        return ran, took, beats

    ran, took, beats = asyncio.run(app())

    assert ran == 10
    assert all(rt.get(eid).status is ExecutionStatus.SUCCEEDED for eid in ids)
    assert [rt.result(eid) for eid in ids] == [2 * i for i in range(10)]
    assert steps_ran(ids, ("first", "second")) == {1: 20}
    assert took < 10 * 2 * IO_S  # the ten executions' I/O overlapped
    assert beats >= 2  # and the loop kept running other tasks meanwhile


def start_all(rt: Runtime, fn: Any, ids: list[str]) -> None:
    for i, eid in enumerate(ids):
        rt.start(fn, i, execution_id=eid)


def test_the_async_worker_runs_200_io_bound_executions_on_sqlite_until_idle(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(str(tmp_path / "durable.sqlite3"))
    rt = Runtime(store, functions=[fetch_two, sync_double])
    async_ids = [f"a-{i}" for i in range(200)]
    sync_ids = [f"s-{i}" for i in range(20)]
    start_all(rt, fetch_two, async_ids)
    start_all(rt, sync_double, sync_ids)  # a sync function runs there too (on threads)
    worker = AsyncWorker(rt, concurrency=250, poll_interval=0.05)

    start = time.monotonic()
    ran = asyncio.run(worker.run(until_idle=True))
    took = time.monotonic() - start

    assert ran == 220
    statuses = Counter(rt.get(eid).status for eid in async_ids + sync_ids)
    assert statuses == {ExecutionStatus.SUCCEEDED: 220}
    assert [rt.result(eid) for eid in async_ids[:3]] == [0, 2, 4]
    assert [rt.result(eid) for eid in sync_ids[:3]] == [0, 2, 4]
    assert steps_ran(async_ids, ("first", "second")) == {1: 400}
    assert steps_ran(sync_ids, ("double",)) == {1: 20}
    assert took < 200 * 2 * IO_S / 4  # far from one after another (20 s)
    store.close()


def test_the_threaded_worker_runs_async_functions(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "durable.sqlite3"))
    rt = Runtime(store, functions=[fetch_two])
    ids = [f"t-{i}" for i in range(8)]
    start_all(rt, fetch_two, ids)

    ran = Worker(rt, concurrency=4, poll_interval=0.05).run(until_idle=True)

    assert ran == 8
    assert all(rt.get(eid).status is ExecutionStatus.SUCCEEDED for eid in ids)
    assert steps_ran(ids, ("first", "second")) == {1: 16}
    store.close()


def test_the_test_runner_skips_a_week_of_an_async_function_instantly() -> None:
    clock = VirtualClock()
    before = clock.now()
    runner = DurableTestRunner(remind, clock=clock)

    start = time.monotonic()
    result = runner.run("Ana", execution_id="r-1")

    assert time.monotonic() - start < 2
    assert result.status is ExecutionStatus.SUCCEEDED
    assert result.result == "hi Ana"
    assert (clock.now() - before).days >= 7
    assert result.get_wait("a-week").status.value == "SUCCEEDED"
    assert steps_ran(["r-1"], ("note", "remind")) == {1: 2}


def test_the_durable_runner_fixture_takes_an_async_function(
    durable_runner: Any, virtual_clock: VirtualClock, memory_store: MemoryStore
) -> None:
    runner = durable_runner(remind, always_replay=True)

    result = runner.run("Bo", execution_id="r-2")

    assert runner.clock is virtual_clock and runner.store is memory_store
    assert result.result == "hi Bo"
    assert steps_ran(["r-2"], ("note", "remind")) == {1: 2}  # restarted after every write


ASYNC_PROBE = """
import asyncio
from durable_core import AsyncDurableContext, durable

runs = []

@durable
async def f(ctx: AsyncDurableContext, event: None) -> int:
    async def one(sc):
        runs.append("one")
        await asyncio.sleep(0)
        return 1

    a = await ctx.step("one", one)
    await ctx.wait("a-week", 7 * 86400)
    return a + await ctx.step("two", lambda sc: runs.append("two") or 2)

def test_probe(durable_runner):
    runner = durable_runner(f)
    assert runner.run(None).result == 3
    assert sorted(runs) == ["one", "two"]
    print("ALWAYS_REPLAY=%s" % runner.always_replay)
"""


def test_the_pytest_plugin_option_always_replay_takes_async_functions(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_async_probe=ASYNC_PROBE)
    result = pytester.runpytest("-s", "-p", "no:randomly", "--durable-always-replay")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ALWAYS_REPLAY=True*"])


def test_the_sync_runtime_called_inside_a_running_loop_still_runs_async_functions() -> None:
    """``run_blocking`` cannot nest ``asyncio.run``: from a loop it uses a helper thread."""
    clock = VirtualClock()
    rt = Runtime(MemoryStore(), clock=clock, functions=[remind])

    async def app() -> Any:
        rt.run(remind, "Cy", execution_id="inside")  # blocks this loop meanwhile
        clock.advance(timedelta(days=7))
        return rt.result(rt.drive("inside").id)

    assert asyncio.run(app()) == "hi Cy"
    assert steps_ran(["inside"], ("note", "remind")) == {1: 2}
