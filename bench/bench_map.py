"""Benchmark: a 100-item ``ctx.map`` on SQLiteStore (durable commits), per-item overhead.

Each case starts and completes one execution on a fresh SQLite file (``durability="full"``,
an fsync per commit, as shipped) and reports the median of ``--repeat`` runs, interleaved
so that a noisy, shared machine hits every case alike:

- ``steps``: 100 plain steps in a row, no map (the baseline: one commit per step);
- ``map/0 steps``: a map whose items return at once (pure branch overhead: one branch
  record per item, the batch's STARTED and decision records, threads);
- ``map/1 step`` at max_concurrency 1, 8 and the default (32): each item runs one step;
- ``replay``: re-running a finished 100-item map from the top (what a resume after the map
  costs): the batch's record and its branches' records are read, no branch code runs.

Per-item overhead = (case - fixed cost of a 0-operation execution) / items.

Usage: ``.venv/bin/python bench/bench_map.py [--items 100] [--repeat 7]
[--durability full|normal] [--json out.json]`` (``normal`` shows the CPU overhead without
the fsync per commit that dominates ``full``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from durable_core import DurableContext, Runtime, StepContext, durable
from durable_core.function import DurableFunction
from durable_core.stores.sqlite import SQLiteStore


def steps_fn(n: int) -> DurableFunction[None, int]:
    @durable(name=f"bench:steps{n}")
    def wf(ctx: DurableContext, event: None) -> int:
        def constant(i: int) -> Callable[[StepContext], int]:
            return lambda sc: i

        return sum(ctx.step(f"s{i}", constant(i)) for i in range(n))

    return wf


def map_fn(n: int, steps: int, concurrency: int | None) -> DurableFunction[None, int]:
    @durable(name=f"bench:map{n}_{steps}_{concurrency}")
    def wf(ctx: DurableContext, event: None) -> int:
        def item(c: DurableContext, x: int, i: int) -> int:
            def plus_one(v: int) -> Callable[[StepContext], int]:
                return lambda sc: v + 1

            for k in range(steps):
                x = c.step(f"s{k}", plus_one(x))
            return x

        result = ctx.map(list(range(n)), item, max_concurrency=concurrency)
        return sum(result.raise_if_failed().values())

    return wf


DURABILITY: Any = "full"


def timed_run(path: Path, fn: DurableFunction[None, int]) -> float:
    store = SQLiteStore(path, durability=DURABILITY)
    rt = Runtime(store)
    start = time.perf_counter()
    ex = rt.run(fn, None)
    elapsed = time.perf_counter() - start
    assert ex.status.value == "SUCCEEDED", ex.error
    store.close()
    return elapsed


def timed_replay(path: Path, fn: DurableFunction[None, int]) -> float:
    """Seconds to re-run a finished execution's function against its journal (no writes)."""
    from datetime import timedelta

    from durable_core.journal import InvocationOptions, Journal
    from durable_core.records import Lease
    from durable_core.runtime.invocation import run_invocation

    store = SQLiteStore(path, durability=DURABILITY)
    rt = Runtime(store)
    ex = rt.run(fn, None)
    start = time.perf_counter()
    journal = Journal(
        execution=store.get_execution(ex.id),
        operations=store.load_operations(ex.id),
        store=store,
        lease=Lease(execution_id=ex.id, owner="bench", fence=-1, expires=rt.clock.now()),
        clock=rt.clock,
        serde=rt.serde,
        options=InvocationOptions(
            lease_ttl=timedelta(seconds=60), inline_retry_threshold=timedelta(0)
        ),
    )
    end = run_invocation(fn, journal)
    elapsed = time.perf_counter() - start
    assert end.status.value == "SUCCEEDED"
    assert journal.writes == 0
    store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--durability",
        choices=["full", "normal"],
        default="full",
        help="SQLiteStore durability: full = fsync per commit (the default store setting)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    global DURABILITY  # noqa: PLW0603 - one knob for every case of this script run
    DURABILITY = args.durability
    n = args.items
    cases: dict[str, Callable[[Path], float]] = {
        "fixed (0 operations)": lambda p: timed_run(p, steps_fn(0)),
        f"{n} steps, no map": lambda p: timed_run(p, steps_fn(n)),
        "map/0 steps, default concurrency": lambda p: timed_run(p, map_fn(n, 0, None)),
        "map/1 step, max_concurrency=1": lambda p: timed_run(p, map_fn(n, 1, 1)),
        "map/1 step, max_concurrency=8": lambda p: timed_run(p, map_fn(n, 1, 8)),
        "map/1 step, default (32)": lambda p: timed_run(p, map_fn(n, 1, None)),
        "replay of finished map/1 step": lambda p: timed_replay(p, map_fn(n, 1, None)),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory() as d:
        counter = 0
        for _ in range(args.repeat):
            for name, case in cases.items():
                counter += 1
                samples[name].append(case(Path(d) / f"b{counter}.db"))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    fixed = medians["fixed (0 operations)"]
    print(
        f"{n}-item map on SQLiteStore (durability={args.durability}), median of {args.repeat} runs"
    )
    print(f"{'case':<36} {'total ms':>9} {'per item us':>12}")
    results: dict[str, Any] = {
        "items": n,
        "repeat": args.repeat,
        "durability": args.durability,
        "cases": {},
    }
    for name, total in medians.items():
        per_item = None if name.startswith("fixed") else (total - fixed) / n * 1e6
        if name.startswith("replay"):
            per_item = total / n * 1e6  # a replay has no invocation fixed cost in it
        shown = "-" if per_item is None else f"{per_item:.0f}"
        print(f"{name:<36} {total * 1e3:>9.1f} {shown:>12}")
        results["cases"][name] = {"total_ms": total * 1e3, "per_item_us": per_item}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
