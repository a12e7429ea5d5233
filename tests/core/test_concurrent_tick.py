"""Runtime.tick(concurrency=n) runs due executions on threads without losing or repeating work."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from durable_core import DurableContext, ExecutionStatus, Runtime, ValidationError, durable
from durable_core.stores import SQLiteStore


def test_concurrent_tick_finishes_everything_once(tmp_path: Path) -> None:
    runs: Counter[str] = Counter()
    lock = threading.Lock()

    def body(key: str) -> str:
        with lock:
            runs[key] += 1
        return key

    @durable
    def three_steps(ctx: DurableContext, n: int) -> list[str]:
        return [ctx.step(f"s{i}", lambda sc, i=i: body(f"{n}-{i}")) for i in range(3)]

    runtime = Runtime(SQLiteStore(tmp_path / "s.sqlite3"))
    ids = [runtime.start(three_steps, n).id for n in range(24)]
    ran = 0
    while ran < 24:
        got = runtime.tick(limit=24, concurrency=8)
        assert got > 0
        ran += got
    assert all(runtime.get(i).status is ExecutionStatus.SUCCEEDED for i in ids)
    assert runs == Counter({f"{n}-{i}": 1 for n in range(24) for i in range(3)})
    assert runtime.result(ids[5]) == ["5-0", "5-1", "5-2"]


def test_concurrency_must_be_positive(tmp_path: Path) -> None:
    runtime = Runtime(SQLiteStore(tmp_path / "s.sqlite3"))
    with pytest.raises(ValidationError, match="concurrency"):
        runtime.tick(concurrency=0)


def test_run_drives_an_invoked_child_to_completion() -> None:
    from durable_core import MemoryStore

    @durable(name="child")
    def child(ctx: DurableContext, n: int) -> int:
        return ctx.step("double", lambda sc: n * 2)

    @durable(name="parent")
    def parent(ctx: DurableContext, n: int) -> int:
        return ctx.invoke(child, n) + 1

    runtime = Runtime(MemoryStore(), functions=[child, parent])
    ex = runtime.run(parent, 20)
    assert ex.status is ExecutionStatus.SUCCEEDED
    assert runtime.result(ex.id) == 41
