"""Core overhead benchmarks for durable_core (issue 2 targets).

Measures, in one run, interleaved and repeated (medians), so ratios are meaningful on a
shared, noisy machine:

- per-step overhead on MemoryStore and SQLiteStore (durable commit per step) at N = 10,
  100, 1000, and raw SQLite's own commit cost with the same settings (the floor);
- fixed cost per invocation (start + lease + load + run + finish of a 0-step function);
- resume cost: replaying a journal of N recorded steps (N up to 10,000) per replayed step;
- ``import durable_core`` / ``import saga`` time in a fresh interpreter, and whether boto3
  got imported.

Usage: ``.venv/bin/python bench/bench_core.py [--repeat 5] [--quick] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from durable_core import DurableContext, MemoryStore, Runtime, durable
from durable_core.stores.base import Store


def _steps_fn(n: int) -> Any:
    @durable(name=f"bench:steps{n}")
    def run_steps(ctx: DurableContext, event: None) -> int:
        total = 0
        for i in range(n):
            total += ctx.step(f"s{i}", lambda sc, i=i: i)
        return total

    return run_steps


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_once(store_factory: Callable[[], Store], n: int) -> float:
    """Seconds to start and complete one execution of n steps on a fresh store."""
    store = store_factory()
    rt = Runtime(store)
    fn = _steps_fn(n)
    elapsed = _time(lambda: rt.run(fn, None))
    store.close()
    return elapsed


def raw_sqlite_commit(n: int, tmp: Path) -> float:
    """Seconds for n single-row durable commits with raw sqlite3 (WAL, synchronous=FULL)."""
    path = tmp / f"raw-{time.monotonic_ns()}.db"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
    payload = json.dumps({"id": "x" * 32, "status": "SUCCEEDED", "result": "1"})
    start = time.perf_counter()
    for i in range(n):
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO t VALUES (?, ?)", (str(i), payload))
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


def resume_cost(n: int) -> float:
    """Seconds per replayed step when resuming an execution with n recorded steps."""

    @durable(name=f"bench:resume{n}")
    def long(ctx: DurableContext, event: None) -> int:
        total = 0
        for i in range(n):
            total += ctx.step(f"s{i}", lambda sc, i=i: i)
        ctx.wait("pause", 60)
        return total

    store = MemoryStore()
    rt = Runtime(store)
    ex = rt.run(long, None)  # records n steps, suspends on the wait
    from durable_core.records import ExecutionStatus

    assert ex.status is ExecutionStatus.RUNNING
    # Resume: replays n steps, reaches the wait again (not due), suspends.
    lease = store.acquire_lease(ex.id, "bench", rt.clock.now(), rt.options.lease_ttl)
    assert lease is not None
    store.release_lease(lease)
    elapsed = _time(lambda: rt.run_once(ex.id))
    return elapsed / n


def import_time(module: str) -> tuple[float, bool]:
    """Seconds to import ``module`` in a fresh interpreter, and whether boto3 got loaded."""
    code = (
        "import sys,time;t=time.perf_counter();import "
        + module
        + ";d=time.perf_counter()-t;print(d, 'boto3' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), out[1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="N up to 100 only")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [10, 100] if args.quick else [10, 100, 1000]
    results: dict[str, Any] = {"per_step_us": {}, "ratio_sqlite_vs_raw": {}}

    from durable_core.stores.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        counter = iter(range(10**9))

        def sqlite_store() -> Store:
            return SQLiteStore(tmp / f"s{next(counter)}.db")

        fixed_mem, fixed_sql = [], []
        per: dict[tuple[str, int], list[float]] = {}
        for _ in range(args.repeat):  # interleave systems within each repetition
            fixed_mem.append(run_once(MemoryStore, 0))
            fixed_sql.append(run_once(sqlite_store, 0))
            for n in sizes:
                per.setdefault(("memory", n), []).append(run_once(MemoryStore, n))
                per.setdefault(("sqlite", n), []).append(run_once(sqlite_store, n))
                per.setdefault(("raw", n), []).append(raw_sqlite_commit(n, tmp))
        f_mem = statistics.median(fixed_mem)
        f_sql = statistics.median(fixed_sql)
        results["fixed_cost_ms"] = {"memory": f_mem * 1e3, "sqlite": f_sql * 1e3}
        for n in sizes:
            mem = (statistics.median(per[("memory", n)]) - f_mem) / n
            sql = (statistics.median(per[("sqlite", n)]) - f_sql) / n
            raw = statistics.median(per[("raw", n)]) / n
            results["per_step_us"][n] = {"memory": mem * 1e6, "sqlite": sql * 1e6, "raw": raw * 1e6}
            results["ratio_sqlite_vs_raw"][n] = sql / raw

    resume_sizes = [1000, 5000] if args.quick else [1000, 5000, 10000]
    results["resume_us_per_step"] = {
        n: statistics.median(resume_cost(n) for _ in range(3)) * 1e6 for n in resume_sizes
    }
    results["import"] = {}
    for mod in ("durable_core", "saga", "pydantic, tenacity, structlog"):
        times = [import_time(mod) for _ in range(args.repeat)]
        results["import"][mod] = {
            "seconds": statistics.median(t for t, _ in times),
            "boto3_loaded": any(b for _, b in times),
        }

    print(
        f"fixed cost per invocation: memory {results['fixed_cost_ms']['memory']:.3f} ms, "
        f"sqlite {results['fixed_cost_ms']['sqlite']:.3f} ms"
    )
    print(
        f"{'N':>6} {'memory us/step':>15} {'sqlite us/step':>15} {'raw commit us':>14} {'ratio':>6}"
    )
    for n in sizes:
        r = results["per_step_us"][n]
        print(
            f"{n:>6} {r['memory']:>15.1f} {r['sqlite']:>15.1f} {r['raw']:>14.1f} "
            f"{results['ratio_sqlite_vs_raw'][n]:>6.2f}"
        )
    print(
        "resume cost (us per replayed step): "
        + ", ".join(f"N={n}: {v:.2f}" for n, v in results["resume_us_per_step"].items())
    )
    for mod, r in results["import"].items():
        print(f"import {mod}: {r['seconds'] * 1e3:.0f} ms (boto3 loaded: {r['boto3_loaded']})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
