"""Throughput: many small workflows, several workers, one SQLite file, end to end.

``N`` workflows (default 1,000) of 5 trivial steps each are submitted and run to
completion; reported: workflows per second from the first submission to the last
completion. Run it with the python of the system's own bench venv::

    .cache/bench-venvs/durable-saga/bin/python bench/throughput.py durable-saga --workers 4
    .cache/bench-venvs/dbos/bin/python bench/throughput.py dbos --workers 4

durable-saga: ``--workers`` worker processes on one SQLite file, each what ``durable worker
--concurrency C`` runs: a ``Worker(Runtime(SQLiteStore(path)), concurrency=C)``, C loops
on threads each claiming one execution at a time, sharing one store (whose concurrent
checkpoints share commits: group commit). With ``--async`` each worker process is what
``durable worker --async --concurrency C`` runs instead: an ``AsyncWorker`` running up to C
invocations of an ``async def`` workflow (async step bodies) as tasks on one event loop.
The parent process submits the workflows with ``Runtime.start`` while they run. A worker
exits once submission is over and no execution is RUNNING. ``--store-mode`` picks the
store's commit mode (``full``: fsync per commit; ``normal``; later modes such as a group
commit are passed through to ``SQLiteStore(durability=...)``). ``--profile`` makes each
worker count and time every store call, to see where the time goes; ``--cprofile DIR``
dumps each worker's ``cProfile`` stats there (read them with ``python -m pstats``).

DBOS: one process, its documented concurrency model: workflows enqueued on a queue
(``DBOS.register_queue(worker_concurrency=--workers, polling_interval_sec=0.01)``) and
run by DBOS's executor threads; ``--dbos-mode start`` uses ``DBOS.start_workflow`` (a
thread per workflow, no queue) instead. ``--dbos-variant`` as in ``peers/dbos_transact``.

The last line of standard output is one JSON object; a human summary goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

STEPS = 5
EXPECTED = sum(range(STEPS))
HERE = Path(__file__).resolve().parent


# --- durable-saga -----------------------------------------------------------------------


def make_store(path: Path, mode: str) -> Any:
    """The store a throughput run uses for ``--store-mode`` (add new commit modes here)."""
    from durable_core.stores.sqlite import SQLiteStore

    return SQLiteStore(path, durability=mode)  # type: ignore[arg-type]


def _constant(i: int) -> Callable[[Any], int]:
    return lambda _step_context: i


def _five() -> Any:
    from durable_core import DurableContext, durable

    @durable(name="bench:five")
    def five(ctx: DurableContext, event: int) -> int:
        total = 0
        for i in range(STEPS):
            total += ctx.step(f"s{i}", _constant(i))
        return total

    return five


def _async_constant(i: int) -> Callable[[Any], Any]:
    async def body(_step_context: Any) -> int:
        return i

    return body


def _five_async() -> Any:
    """The same 5 steps as ``_five``, as an ``async def`` workflow with async step bodies."""
    from durable_core import AsyncDurableContext, durable

    @durable(name="bench:five-async")
    async def five_async(ctx: AsyncDurableContext, event: int) -> int:
        total = 0
        for i in range(STEPS):
            total += await ctx.step(f"s{i}", _async_constant(i))
        return total

    return five_async


def _workflow(args: argparse.Namespace) -> Any:
    return _five_async() if args.use_async else _five()


class _Profiled:
    """Wraps a store: counts and times every call (``--profile`` only)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()
        self.seconds: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return target(*args, **kwargs)
            finally:
                self.calls[name] += 1
                took = time.perf_counter() - start
                self.seconds[name] = self.seconds.get(name, 0.0) + took

        return call


def ds_worker(args: argparse.Namespace) -> None:
    """One worker process: ``durable worker --concurrency N`` (a ``Worker``) on the file.

    It stops once submission is over and no execution is RUNNING (a watcher thread sets
    the worker's stop event), then prints a JSON report.
    """
    from durable_core import Runtime
    from durable_core.runtime.worker import Worker

    store = make_store(Path(args.db), args.store_mode)
    profiled = _Profiled(store) if args.profile else None
    rt = Runtime(profiled or store, functions=[_workflow(args)])
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    cpu_profile = None
    if args.cprofile:
        import cProfile

        cpu_profile = cProfile.Profile()
        cpu_profile.enable()
    start, cpu = time.perf_counter(), time.process_time()
    if args.use_async:
        ran = asyncio.run(_run_async_worker(rt, store, args))
    else:
        worker = Worker(rt, poll_interval=args.poll, concurrency=args.concurrency)
        stop = threading.Event()
        watcher = threading.Thread(target=_stop_when_done, args=(store, args, stop), daemon=True)
        watcher.start()
        ran = worker.run(stop)
    report: dict[str, Any] = {
        "ran": ran,
        "wall_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
    }
    if cpu_profile is not None:
        cpu_profile.disable()
        Path(args.cprofile).mkdir(parents=True, exist_ok=True)
        cpu_profile.dump_stats(Path(args.cprofile) / f"worker-{os.getpid()}.pstats")
    if profiled is not None:
        report["store_calls"] = dict(profiled.calls)
        report["store_seconds"] = {k: round(v, 4) for k, v in profiled.seconds.items()}
    store.close()
    print(json.dumps(report), flush=True)


async def _run_async_worker(rt: Any, store: Any, args: argparse.Namespace) -> int:
    """``durable worker --async --concurrency C`` until submission is over and none runs."""
    from durable_core import AsyncWorker

    worker = AsyncWorker(rt, poll_interval=args.poll, concurrency=args.concurrency)
    stop = asyncio.Event()
    done = threading.Event()
    loop = asyncio.get_running_loop()
    watcher = loop.run_in_executor(None, _stop_when_done, store, args, done)
    watcher.add_done_callback(lambda _f: stop.set())
    ran: int = await worker.run(stop)
    await watcher
    return ran


def _stop_when_done(store: Any, args: argparse.Namespace, stop: threading.Event) -> None:
    """Set ``stop`` once submission is over and no execution is RUNNING."""
    from durable_core import ExecutionStatus

    done_flag = Path(args.done_flag)
    while not (
        done_flag.exists() and not store.list_executions(status=ExecutionStatus.RUNNING, limit=1)
    ):
        time.sleep(0.01)
    stop.set()


def run_durable_saga(args: argparse.Namespace) -> dict[str, Any]:
    from durable_core import ExecutionStatus, Runtime

    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        db = Path(tmp) / "throughput.sqlite3"
        done_flag = Path(tmp) / "submitted"
        store = make_store(db, args.store_mode)
        rt = Runtime(store, functions=[_workflow(args)])
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "_ds-worker",
            "--db",
            str(db),
            "--done-flag",
            str(done_flag),
            "--store-mode",
            args.store_mode,
            "--poll",
            str(args.poll),
            "--concurrency",
            str(args.concurrency),
        ]
        cmd += ["--async"] if args.use_async else []
        cmd += ["--profile"] if args.profile else []
        cmd += ["--cprofile", args.cprofile] if args.cprofile else []
        workers = [
            subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(args.workers)
        ]
        for w in workers:
            assert w.stdout is not None
            if w.stdout.readline().strip() != "ready":
                raise SystemExit("a worker failed to start")
        fn = _workflow(args)
        start = time.perf_counter()
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        for i in range(args.workflows):
            rt.start(fn, i, execution_id=f"wf-{i}")
        submitted = time.perf_counter() - start
        done_flag.touch()
        reports = []
        for w in workers:
            out, _ = w.communicate(timeout=3600)
            if w.returncode != 0:
                raise SystemExit(f"worker exited {w.returncode}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.perf_counter() - start
        finished = store.list_executions(limit=args.workflows + 10)
        statuses = Counter(ex.status.value for ex in finished)
        wrong = [ex.id for ex in finished if ex.result != str(EXPECTED)]
        store.close()
    if statuses != {ExecutionStatus.SUCCEEDED.value: args.workflows} or wrong:
        raise SystemExit(f"not all workflows succeeded: {dict(statuses)}, wrong: {wrong[:5]}")
    return {
        "system": "durable-saga",
        "mode": f"sqlite-{args.store_mode}",
        "worker": "async" if args.use_async else "threads",
        "concurrency_per_worker": args.concurrency,
        "submit_s": submitted,
        "elapsed_s": elapsed,
        "per_worker": reports,
    }


# --- DBOS -------------------------------------------------------------------------------


def run_dbos(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(HERE / "peers"))
    import dbos_transact  # the peer program: same launch settings as the per-step numbers
    from dbos import DBOS

    done = threading.Event()
    lock = threading.Lock()
    count = [0]

    @DBOS.step()  # type: ignore[untyped-decorator]  # dbos is not in the project venv
    def tp_step(i: int) -> int:
        return i

    @DBOS.workflow()  # type: ignore[untyped-decorator]
    def five(event: int) -> int:
        total = 0
        for i in range(STEPS):
            total += tp_step(i)
        with lock:
            count[0] += 1
            if count[0] == args.workflows:
                done.set()
        return total

    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        dbos_transact._launch(Path(tmp) / "throughput.sqlite3", args.dbos_variant)
        if args.dbos_mode == "queue":
            DBOS.register_queue(
                "bench", worker_concurrency=args.workers, polling_interval_sec=args.dbos_poll
            )
        start = time.perf_counter()
        for i in range(args.workflows):
            if args.dbos_mode == "queue":
                DBOS.enqueue_workflow("bench", five, i)
            else:
                DBOS.start_workflow(five, i)
        submitted = time.perf_counter() - start
        if not done.wait(3600):
            raise SystemExit("DBOS did not finish within an hour")
        while True:  # the last results are recorded just after the bodies return
            ok = DBOS.list_workflows(status="SUCCESS", name=five.__qualname__)
            if len(ok) >= args.workflows:
                break
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
        wrong = [w.workflow_id for w in ok if w.output != EXPECTED]
        DBOS.destroy()
    if wrong:
        raise SystemExit(f"wrong results: {wrong[:5]}")
    return {
        "system": "dbos",
        "mode": f"{args.dbos_variant}-{args.dbos_mode}",
        "submit_s": submitted,
        "elapsed_s": elapsed,
    }


# --- entry point ------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("system", choices=["durable-saga", "dbos", "_ds-worker"])
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--store-mode", default="full", help="durable-saga SQLite commit mode")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="durable-saga: executions run at once per worker process (Worker concurrency)",
    )
    parser.add_argument(
        "--async",
        dest="use_async",
        action="store_true",
        help="durable-saga: an async workflow on AsyncWorker (durable worker --async)",
    )
    parser.add_argument("--poll", type=float, default=0.002, help="idle poll seconds")
    parser.add_argument("--profile", action="store_true", help="count/time store calls")
    parser.add_argument("--cprofile", metavar="DIR", help="dump each worker's cProfile here")
    parser.add_argument("--dbos-variant", default="sqlite", choices=["sqlite", "sqlite-wal"])
    parser.add_argument("--dbos-mode", default="queue", choices=["queue", "start"])
    parser.add_argument("--dbos-poll", type=float, default=0.01, help="DBOS queue polling")
    parser.add_argument("--tmp-dir", default=None)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--done-flag", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.system == "_ds-worker":
        ds_worker(args)
        return
    result = run_durable_saga(args) if args.system == "durable-saga" else run_dbos(args)
    result.update(workflows=args.workflows, workers=args.workers, steps=STEPS)
    result["workflows_per_s"] = args.workflows / result["elapsed_s"]
    print(
        f"{result['system']} ({result['mode']}, {args.workers} workers"
        + (f" x {args.concurrency}" if result.get("concurrency_per_worker", 1) > 1 else "")
        + (", async" if result.get("worker") == "async" else "")
        + "): "
        f"{result['workflows_per_s']:.1f} workflows/s "
        f"({args.workflows} x {STEPS} steps in {result['elapsed_s']:.2f} s)",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
