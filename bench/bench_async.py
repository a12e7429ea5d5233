"""Async benchmarks: the ``async def`` surface and ``AsyncWorker`` beside the sync path.

Three figures, each measured in one run, interleaved (within a repetition every variant of
a figure is measured back to back, in an order that rotates between repetitions) and
repeated; reported as medians with the spread (lowest-highest) over repetitions, and
ratios as medians of per-repetition ratios of side-by-side measurements (paired):

- ``steps``: per-step overhead, ``(T(N) - T(0)) / N`` for one execution of N trivial steps
  (start it, take its lease, run one invocation to the end), on ``MemoryStore`` and on
  ``SQLiteStore`` with durable commits (``durability="full"``: fsync per checkpoint), with
  raw SQLite's own commit (the floor, as in ``bench_core.py``). Variants: the sync
  function; an ``async def`` function with async step bodies, invoked on a running loop
  (``Runtime.invoke_async``, what ``AsyncWorker`` does); the same with sync step bodies
  (each runs on a thread, ``asyncio.to_thread``); the async function invoked from sync code
  (``Runtime.run_once``: an event loop of its own per invocation, what the threaded worker
  and ``durable run`` do).
- ``io``: executions whose one step awaits a 50 ms simulated I/O call
  (``asyncio.sleep``), pre-submitted on a SQLite file (durable commits), then drained by
  one ``AsyncWorker(concurrency=C).run(until_idle=True)`` in this process; timed: the
  worker run (submission is reported apart). Beside it, the threaded ``Worker`` with 16
  loops running the same call as a blocking ``time.sleep(0.05)`` in a sync workflow, and
  ``AsyncWorker`` x 100 with that blocking call as a sync step body of an async workflow
  (it runs on the loop's default thread pool: ``min(32, cpus + 4)`` threads).
- ``throughput``: ``bench/throughput.py``: 1,000 5-step workflows with durable commits,
  submitted while one worker process runs them: the threaded ``Worker`` x 16 (group
  commit, the configuration of ``run_all.py``'s throughput target), ``AsyncWorker`` x 16
  and x 100 (``durable worker --async``; an async workflow with async step bodies), and
  DBOS on SQLite in its own venv (``.cache/bench-venvs/dbos``, built as ``run_all.py``
  builds it) through the same harness.

The durable-saga figures run with this interpreter and this checkout (``PYTHONPATH`` is
set to it for the throughput processes). Worker log lines below WARNING are dropped in
this process (``throughput.py``'s workers log as ``durable worker`` does).

Usage::

    PYTHONPATH=$PWD .venv/bin/python -m bench.bench_async            # ~6 minutes on 2 cores
    PYTHONPATH=$PWD .venv/bin/python -m bench.bench_async --quick    # smoke run, ~15 s
    ... --only steps,io --reps 7 --no-dbos --out FILE

The full run writes ``bench/results/async.json`` (raw samples included: ``--summarize FILE``
recomputes and prints a file's summary from them); ``--quick`` writes
``.cache/bench-quick/async.json`` and skips DBOS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from statistics import median
from typing import Any

import structlog

from bench.bench_core import raw_sqlite_commit
from bench.run_all import VENVS, ensure_venvs, machine, python_of, rotated
from durable_core import (
    AsyncDurableContext,
    AsyncWorker,
    DurableContext,
    ExecutionStatus,
    MemoryStore,
    Runtime,
    SQLiteStore,
    Store,
    Worker,
    durable,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "async.json"
QUICK = REPO / ".cache" / "bench-quick" / "async.json"
IO_SECONDS = 0.05
"""The simulated I/O call of the ``io`` figure."""

STEP_VARIANTS = ("sync", "async", "async, sync bodies", "async, own loop")
"""``steps`` variants; ratios are to ``sync``."""
IO_VARIANTS = (
    "AsyncWorker x 1000",
    "AsyncWorker x 100",
    "threaded Worker x 16",
    "AsyncWorker x 100, blocking sync body",
)
THROUGHPUT: dict[str, tuple[str, list[str]]] = {
    "threaded Worker x 16": ("durable-saga", ["--concurrency", "16"]),
    "AsyncWorker x 16": ("durable-saga", ["--async", "--concurrency", "16"]),
    "AsyncWorker x 100": ("durable-saga", ["--async", "--concurrency", "100"]),
    "DBOS SQLite": ("dbos", ["--dbos-variant", "sqlite"]),
}
"""label -> (system, ``throughput.py`` arguments); durable-saga: 1 process, ``full``."""
DBOS = "DBOS SQLite"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- workflows -----------------------------------------------------------------------------


def _constant(i: int) -> Callable[[Any], int]:
    return lambda _sc: i


def _async_constant(i: int) -> Callable[[Any], Any]:
    # Unannotated like the sync lambda: an annotated body made per call would have its
    # return annotation resolved at every step (the resolution is cached per function).
    async def body(_sc):  # type: ignore[no-untyped-def]
        return i

    return body


def steps_functions(n: int) -> dict[str, Any]:
    """One durable function of ``n`` trivial steps per ``steps`` variant."""

    @durable(name=f"bench:sync{n}")
    def sync_steps(ctx: DurableContext, event: None) -> int:
        total = 0
        for i in range(n):
            total += ctx.step(f"s{i}", _constant(i))
        return total

    @durable(name=f"bench:async{n}")
    async def async_steps(ctx: AsyncDurableContext, event: None) -> int:
        total = 0
        for i in range(n):
            total += await ctx.step(f"s{i}", _async_constant(i))
        return total

    @durable(name=f"bench:async-sync-bodies{n}")
    async def async_sync_bodies(ctx: AsyncDurableContext, event: None) -> int:
        total = 0
        for i in range(n):
            total += await ctx.step(f"s{i}", _constant(i))
        return total

    return {
        "sync": sync_steps,
        "async": async_steps,
        "async, sync bodies": async_sync_bodies,
        "async, own loop": async_steps,
    }


async def _io_call(_sc: Any) -> str:
    await asyncio.sleep(IO_SECONDS)  # an HTTP request, say
    return "ok"


@durable(name="bench:io-async")
async def io_async(ctx: AsyncDurableContext, event: int) -> str:
    return await ctx.step("call", _io_call)


def _blocking_io_call(_sc: Any) -> str:
    time.sleep(IO_SECONDS)
    return "ok"


@durable(name="bench:io-sync")
def io_sync(ctx: DurableContext, event: int) -> str:
    return ctx.step("call", _blocking_io_call)


@durable(name="bench:io-async-blocking")
async def io_async_blocking(ctx: AsyncDurableContext, event: int) -> str:
    return await ctx.step("call", _blocking_io_call)  # a sync body: on a thread


def _io_function(variant: str) -> Any:
    if variant.startswith("threaded"):
        return io_sync
    return io_async_blocking if "blocking" in variant else io_async


# --- steps -------------------------------------------------------------------------------


def _start_and_lease(rt: Runtime, fn: Any) -> Any:
    ex = rt.start(fn, None)
    lease = rt.store.acquire_lease(ex.id, rt.worker_id, rt.clock.now(), rt.options.lease_ttl)
    assert lease is not None
    return lease


def _check(ex: Any, n: int) -> None:
    if ex is None or ex.status is not ExecutionStatus.SUCCEEDED or ex.result != str(sum(range(n))):
        raise SystemExit(f"a {n}-step benchmark run did not succeed: {ex}")


def _time_sync(store: Store, fn: Any, n: int) -> float:
    """Start ``fn`` and run one invocation from this thread (an async ``fn`` on a loop of
    its own); seconds."""
    rt = Runtime(store)
    start = time.perf_counter()
    ex = rt.start(fn, None)
    done = rt.run_once(ex.id)
    elapsed = time.perf_counter() - start
    _check(done, n)
    return elapsed


async def _time_on_loop(store: Store, fn: Any, n: int) -> float:
    """Start ``fn`` and await its invocation on this loop (``AsyncWorker``'s path)."""
    rt = Runtime(store)
    start = time.perf_counter()
    done = await rt.invoke_async(_start_and_lease(rt, fn))
    elapsed = time.perf_counter() - start
    _check(done, n)
    return elapsed


def steps_sample(
    variant: str, fn: Any, n: int, make_store: Callable[[], Store], runs: int
) -> list[float]:
    """``runs`` timed runs of one variant, each on a fresh store."""
    out: list[float] = []
    if variant in ("async", "async, sync bodies"):

        async def all_runs() -> None:
            for _ in range(runs):
                store = make_store()
                out.append(await _time_on_loop(store, fn, n))
                store.close()

        asyncio.run(all_runs())
        return out
    for _ in range(runs):
        store = make_store()
        out.append(_time_sync(store, fn, n))
        store.close()
    return out


def inner_runs(n: int) -> int:
    """Timed runs per sample: more for short runs, where timer and scheduler noise weigh."""
    return {0: 15, 10: 7, 100: 3}.get(n, 1)


def run_steps(cfg: dict[str, Any], rep: int, tmp: Path, samples: list[dict[str, Any]]) -> None:
    counter = iter(range(10**9))

    def sqlite() -> Store:
        return SQLiteStore(tmp / f"steps-{next(counter)}.db")

    stores: dict[str, Callable[[], Store]] = {"memory": MemoryStore, "sqlite": sqlite}
    for store_name, make in stores.items():
        for n in cfg["sizes"]:
            fns = steps_functions(n)
            for variant in rotated(list(STEP_VARIANTS), rep):
                seconds = steps_sample(variant, fns[variant], n, make, inner_runs(n))
                samples.append(
                    {
                        "store": store_name,
                        "variant": variant,
                        "n": n,
                        "rep": rep,
                        "seconds": seconds,
                    }
                )
            if store_name == "sqlite" and n > 0:
                raw = [raw_sqlite_commit(n, tmp) for _ in range(inner_runs(n))]
                samples.append(
                    {"store": "sqlite", "variant": "raw commit", "n": n, "rep": rep, "seconds": raw}
                )


# --- io ------------------------------------------------------------------------------------


def io_sample(variant: str, executions: int, tmp: Path) -> dict[str, Any]:
    """Submit ``executions`` I/O workflows on a fresh SQLite file, then drain them."""
    path = tmp / f"io-{time.monotonic_ns()}.db"
    store = SQLiteStore(path)
    fn = _io_function(variant)
    rt = Runtime(store, functions=[fn])
    start = time.perf_counter()
    for i in range(executions):
        rt.start(fn, i, execution_id=f"io-{i}")
    submit_s = time.perf_counter() - start
    start = time.perf_counter()
    if variant.startswith("threaded"):
        Worker(rt, concurrency=16).run(until_idle=True)
    else:
        concurrency = int(variant.split(",", maxsplit=1)[0].rsplit(" ", 1)[1])
        asyncio.run(AsyncWorker(rt, concurrency=concurrency).run(until_idle=True))
    wall_s = time.perf_counter() - start
    done = store.list_executions(status=ExecutionStatus.SUCCEEDED, limit=executions + 1)
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if len(done) != executions:
        raise SystemExit(f"io {variant}: {len(done)} of {executions} executions succeeded")
    return {"wall_s": wall_s, "submit_s": submit_s}


def run_io(cfg: dict[str, Any], rep: int, tmp: Path, samples: list[dict[str, Any]]) -> None:
    for variant in rotated(list(IO_VARIANTS), rep):
        ans = io_sample(variant, cfg["io_executions"], tmp)
        log(f"  io {variant}: {ans['wall_s']:.2f} s")
        samples.append({"variant": variant, "rep": rep, **ans})


# --- throughput ------------------------------------------------------------------------------


def _throughput_python(system: str) -> str:
    return sys.executable if system == "durable-saga" else str(python_of(system))


def run_throughput(
    cfg: dict[str, Any], rep: int, tmp: Path, samples: list[dict[str, Any]], labels: list[str]
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    for label in rotated(labels, rep):
        system, extra = THROUGHPUT[label]
        argv = [
            _throughput_python(system),
            str(HERE / "throughput.py"),
            system,
            "--workflows",
            str(cfg["throughput_workflows"]),
            "--tmp-dir",
            str(tmp),
        ]
        if system == "durable-saga":
            argv += ["--workers", "1", "--store-mode", "full"]
        else:
            argv += ["--workers", "4"]  # DBOS's queue concurrency, as in run_all.py
        done = subprocess.run(
            [*argv, *extra], capture_output=True, text=True, cwd=REPO, env=env, timeout=3600,
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"throughput {label} failed:\n{done.stderr[-3000:]}")
        ans = json.loads(done.stdout.strip().splitlines()[-1])
        log(f"  throughput {label}: {ans['workflows_per_s']:.1f} workflows/s")
        keep = {k: ans[k] for k in ("workflows_per_s", "elapsed_s", "submit_s") if k in ans}
        if "per_worker" in ans:
            keep["worker_cpu_s"] = ans["per_worker"][0]["cpu_s"]
        samples.append({"label": label, "rep": rep, **keep})


# --- summary -------------------------------------------------------------------------------


def _spread(values: list[float], scale: float = 1.0, digits: int = 1) -> dict[str, Any]:
    return {
        "median": round(median(values) * scale, digits + 2),
        "min": round(min(values) * scale, digits + 2),
        "max": round(max(values) * scale, digits + 2),
        "reps": len(values),
    }


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    cfg, samples = result["config"], result["samples"]
    out: dict[str, Any] = {}
    if samples["steps"]:
        # (store, variant) -> n -> rep -> median seconds of the sample's runs
        t: dict[tuple[str, str], dict[int, dict[int, float]]] = {}
        for row in samples["steps"]:
            key = (row["store"], row["variant"])
            t.setdefault(key, {}).setdefault(row["n"], {})[row["rep"]] = median(row["seconds"])
        sizes = [n for n in cfg["sizes"] if n > 0]

        def slope(key: tuple[str, str], n: int) -> dict[int, float]:
            if key[1] == "raw commit":  # no fixed cost to take out
                return {r: v / n for r, v in t[key][n].items()}
            return {r: (t[key][n][r] - t[key][0][r]) / n for r in t[key][n]}

        per_step: dict[str, Any] = {}
        ratios: dict[str, Any] = {}
        fixed: dict[str, Any] = {}
        for (store, variant), _ in sorted(t.items()):
            label = f"{store} {variant}"
            per_step[label] = {
                n: _spread(list(slope((store, variant), n).values()), 1e6) for n in sizes
            }
            if variant != "raw commit":
                fixed[label] = _spread(list(t[(store, variant)][0].values()), 1e3, 3)
            if variant in ("sync", "raw commit"):
                continue
            base = (store, "sync")
            ratios[f"{label} / {store} sync"] = {
                n: _spread(
                    [slope((store, variant), n)[r] / s for r, s in slope(base, n).items()], 1, 2
                )
                for n in sizes
            }
        for variant in ("sync", "async"):
            ratios[f"sqlite {variant} / raw commit"] = {
                n: _spread(
                    [
                        slope(("sqlite", variant), n)[r] / s
                        for r, s in slope(("sqlite", "raw commit"), n).items()
                    ],
                    1,
                    2,
                )
                for n in sizes
            }
        out["steps"] = {"per_step_us": per_step, "fixed_ms": fixed, "ratios": ratios}
    if samples["io"]:
        by: dict[str, list[dict[str, Any]]] = {}
        for row in samples["io"]:
            by.setdefault(row["variant"], []).append(row)
        out["io"] = {
            v: {
                "wall_s": _spread([r["wall_s"] for r in rows], 1, 3),
                "submit_s": _spread([r["submit_s"] for r in rows], 1, 3),
            }
            for v, rows in by.items()
        }
    if samples["throughput"]:
        tput: dict[str, dict[int, float]] = {}
        for row in samples["throughput"]:
            tput.setdefault(row["label"], {})[row["rep"]] = row["workflows_per_s"]
        ratios_t: dict[str, Any] = {}
        for label, per_rep in tput.items():
            if THROUGHPUT[label][0] != "durable-saga":
                continue
            for base in ("threaded Worker x 16", DBOS):
                if label == base or base not in tput:
                    continue
                paired = [per_rep[r] / tput[base][r] for r in per_rep if r in tput[base]]
                if paired:
                    ratios_t[f"{label} / {base}"] = _spread(paired, 1, 2)
        out["throughput"] = {
            "workflows_per_s": {k: _spread(list(v.values())) for k, v in tput.items()},
            "ratios": ratios_t,
        }
    out["targets"] = targets(out, cfg)
    return out


def targets(s: dict[str, Any], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[tuple[str, str, float | None, float]] = []
    if "steps" in s:
        big = [n for n in cfg["sizes"] if n >= 100] or [max(cfg["sizes"])]
        for store in ("memory", "sqlite"):
            r = s["steps"]["ratios"][f"{store} async / {store} sync"]
            worst = max(r[n]["median"] for n in big)
            rows.append(
                (f"async per step / sync per step, {store} (worst of N>=100)", "x", worst, 1.5)
            )
    if "io" in s and "AsyncWorker x 1000" in s["io"]:
        n = cfg["io_executions"]
        wall = s["io"]["AsyncWorker x 1000"]["wall_s"]["median"]
        rows.append((f"{n} executions x 50 ms async I/O, one AsyncWorker (wall)", "s", wall, 3.0))
    if "throughput" in s:
        for label in ("AsyncWorker x 100", "AsyncWorker x 16"):
            r = s["throughput"]["ratios"].get(f"{label} / {DBOS}")
            if r is not None:
                rows.append((f"throughput, {label} / DBOS SQLite", "x", r["median"], -20.0))
    out = []
    for name, unit, measured, bound in rows:
        if bound < 0:
            ok = measured is not None and measured >= -bound
            target = f">= {-bound:g} {unit}"
        else:
            ok = measured is not None and measured <= bound
            target = f"<= {bound:g} {unit}"
        out.append({"name": name, "target": target, "measured": measured, "unit": unit, "pass": ok})
    return out


def _f(spread: dict[str, Any], digits: int = 1) -> str:
    return f"{spread['median']:.{digits}f} [{spread['min']:.{digits}f}-{spread['max']:.{digits}f}]"


def print_table(result: dict[str, Any]) -> None:
    s, cfg = result["summary"], result["config"]
    print(f"\nmedian [lowest-highest] over {cfg['reps']} interleaved repetitions")
    if "steps" in s:
        sizes = [n for n in cfg["sizes"] if n > 0]
        st = s["steps"]
        print("\nper-step us (fixed cost subtracted) | fixed cost ms")
        for label, per in st["per_step_us"].items():
            fixed = st["fixed_ms"].get(label)
            print(
                f"per-step {label:<28}"
                + "".join(f"  N={n}: {_f(per[n]):<24}" for n in sizes)
                + (f"  fixed: {_f(fixed, 3)}" if fixed else "")
            )
        for name, r in st["ratios"].items():
            print(f"ratio {name:<44}" + "".join(f"  N={n}: {_f(r[n], 2):<20}" for n in sizes))
    if "io" in s:
        print(f"\n{cfg['io_executions']} executions each awaiting 50 ms I/O (SQLite full)")
        for variant, v in s["io"].items():
            print(
                f"io {variant:<24} wall {_f(v['wall_s'], 2)} s   (submit {_f(v['submit_s'], 2)} s)"
            )
    if "throughput" in s:
        print(f"\nthroughput, {cfg['throughput_workflows']} x 5-step workflows, SQLite full")
        for label, v in s["throughput"]["workflows_per_s"].items():
            print(f"throughput {label:<24} {_f(v)} workflows/s")
        for name, r in s["throughput"]["ratios"].items():
            print(f"ratio {name:<44} {_f(r, 2)}")
    print("\nTargets")
    for t in s["targets"]:
        verdict = "PASS" if t["pass"] else "FAIL"
        m = "-" if t["measured"] is None else f"{t['measured']:.2f}"
        print(f"{verdict}  {t['name']}: {m} {t['unit']} (target {t['target']})")


# --- the run -------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    return {
        "quick": quick,
        "reps": args.reps or (2 if quick else 5),
        "sizes": [0, 10, 100] if quick else [0, 10, 100, 1000],
        "io_executions": 100 if quick else 1000,
        "throughput_workflows": 100 if quick else 1000,
        "parts": args.only.split(","),
    }


def run(cfg: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {"steps": [], "io": [], "throughput": []}
    with tempfile.TemporaryDirectory(prefix="bench-async-") as tmp_name:
        tmp = Path(tmp_name)
        for rep in range(cfg["reps"]):
            log(f"repetition {rep + 1}/{cfg['reps']}")
            if "steps" in cfg["parts"]:
                run_steps(cfg, rep, tmp, samples["steps"])
            if "io" in cfg["parts"]:
                run_io(cfg, rep, tmp, samples["io"])
            if "throughput" in cfg["parts"]:
                run_throughput(cfg, rep, tmp, samples["throughput"], labels)
    return samples


def _labels(args: argparse.Namespace) -> Iterator[str]:
    for label, (system, _) in THROUGHPUT.items():
        if system == "dbos" and (args.no_dbos or args.quick):
            continue
        yield label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (~15 s), no DBOS")
    parser.add_argument("--reps", type=int, default=0, help="repetitions (default 5; quick 2)")
    parser.add_argument("--only", default="steps,io,throughput", help="parts to run")
    parser.add_argument("--no-dbos", action="store_true", help="leave DBOS out")
    parser.add_argument("--out", type=Path, default=None, help=f"default {RESULTS}")
    parser.add_argument(
        "--summarize", type=Path, metavar="FILE", help="recompute FILE's summary from its samples"
    )
    args = parser.parse_args()
    if args.summarize:
        result = json.loads(args.summarize.read_text())
        result["summary"] = summarize(result)
        args.summarize.write_text(json.dumps(result, indent=1) + "\n")
        print_table(result)
        return
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    cfg = plan(args)
    labels = list(_labels(args))
    if "throughput" in cfg["parts"] and DBOS in labels:
        ensure_venvs(reinstall=False, only=("dbos",))
    started = time.perf_counter()
    result: dict[str, Any] = {"machine": machine(), "config": cfg}
    result["machine"]["durable_core"] = str(Path(sys.modules["durable_core"].__file__ or "").parent)
    result["machine"]["venvs"] = str(VENVS) if DBOS in labels else None
    result["samples"] = run(cfg, labels)
    result["summary"] = summarize(result)
    result["machine"]["run_seconds"] = round(time.perf_counter() - started, 1)
    out = args.out or (QUICK if args.quick else RESULTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    log(f"wrote {out}")
    print_table(result)


if __name__ == "__main__":
    main()
