"""durable-saga under the peer benchmark protocol (see ``_common.py`` for the specs).

Variants:

- ``memory``: ``MemoryStore`` (nothing durable; the engine's own cost).
- ``sqlite-full``: ``SQLiteStore(durability="full")``: WAL, ``synchronous=FULL``, one
  fsync'd commit per checkpoint before the step's result is returned.
- ``sqlite-normal``: ``SQLiteStore(durability="normal")``: WAL, ``synchronous=NORMAL``.
  A commit is not fsync'd; the last commits can be lost on power loss or an OS crash (never
  on a process crash) and the file is never corrupted.

Each process uses one store file (fresh per process) for all its runs, as an application
would. The workflow is ``for i in range(n): ctx.step(f"s{i}", lambda sc: i)``.

Resume: an execution records N steps then waits 360 days; the timed region is one
``Runtime.run_once`` (take the lease, load the journal, replay N steps, suspend again at
the wait, record that and release the lease). The journal is left unchanged, so it is
re-resumed for each run. It is recorded once per (variant, N) in ``cache_dir`` with
``durability="normal"`` to save time; the resume itself runs with the variant's store.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import Spec, import_time, main, max_rss_mb, repeat

VARIANTS = ("memory", "sqlite-full", "sqlite-normal")
RESUME_FORMAT = 3  # 3: records without unset fields, journal order index
"""Bump when the recorded resume journal changes shape (cached files are rebuilt)."""
RESUME_WAIT = timedelta(days=360)
"""The wait the resumed execution suspends at again: never due while cached files live."""
RESUME_CACHE_MAX_AGE_S = 300 * 86400
"""Older cached journals are rebuilt, so that their wait is still in the future."""


def _store(variant: str, path: Path) -> Any:
    from durable_core import MemoryStore

    if variant == "memory":
        return MemoryStore()
    from durable_core.stores.sqlite import SQLiteStore

    if variant == "sqlite-full":
        return SQLiteStore(path, durability="full")
    if variant == "sqlite-normal":
        return SQLiteStore(path, durability="normal")
    raise SystemExit(f"unknown variant {variant!r}; known: {VARIANTS}")


def constant(i: int) -> Callable[[Any], int]:
    """A trivial step body returning ``i``."""
    return lambda _step_context: i


def _steps_function(name: str, *, then_wait: bool) -> Any:
    from durable_core import DurableContext, durable

    @durable(name=name)
    def steps(ctx: DurableContext, n: int) -> int:
        total = 0
        for i in range(n):
            total += ctx.step(f"s{i}", constant(i))
        if then_wait:
            ctx.wait("pause", RESUME_WAIT)
        return total

    return steps


_runtimes: dict[str, Any] = {}


def _runtime(spec: Spec) -> Any:
    """This process's runtime for the variant: one store file, reused by every run."""
    from durable_core import Runtime

    variant = spec["variant"]
    if variant not in _runtimes:
        tmp = tempfile.mkdtemp(prefix="bench-ds-", dir=spec.get("tmp_dir"))
        _runtimes[variant] = Runtime(_store(variant, Path(tmp) / "bench.sqlite3"))
        _tmp_dirs.append(tmp)
    return _runtimes[variant]


_tmp_dirs: list[str] = []


def _cleanup() -> None:
    for rt in _runtimes.values():
        rt.store.close()
    for tmp in _tmp_dirs:
        shutil.rmtree(tmp, ignore_errors=True)


def op_steps(spec: Spec) -> dict[str, Any]:
    from durable_core import ExecutionStatus

    n, runs = int(spec["n"]), int(spec.get("runs", 3))
    rt = _runtime(spec)
    fn = _steps_function("bench:steps", then_wait=False)

    def one(size: int) -> None:
        ex = rt.run(fn, size)
        if ex.status is not ExecutionStatus.SUCCEEDED:
            raise SystemExit(f"run ended {ex.status}: {ex.error}")

    return {"seconds": repeat(one, n, runs)}


def _resume_store_file(spec: Spec, n: int) -> tuple[Path, str]:
    """A cached store file holding one execution suspended after ``n`` recorded steps."""
    from durable_core import Runtime
    from durable_core.stores.sqlite import SQLiteStore

    cache = Path(spec["cache_dir"])
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"durable-saga-resume-v{RESUME_FORMAT}-{n}.sqlite3"
    eid = f"resume-{n}"
    if not path.exists() or time.time() - path.stat().st_mtime > RESUME_CACHE_MAX_AGE_S:
        building = path.with_suffix(".building")
        for leftover in cache.glob(building.name + "*"):
            leftover.unlink()
        store = SQLiteStore(building, durability="normal")
        rt = Runtime(store)
        rt.run(_steps_function("bench:resume", then_wait=True), n, execution_id=eid)
        store.close()
        sqlite_checkpoint(building)
        shutil.move(building, path)
    return path, eid


def sqlite_checkpoint(path: Path) -> None:
    """Fold the WAL into the main file so that the file alone holds everything."""
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def op_resume(spec: Spec) -> dict[str, Any]:
    from durable_core import ExecutionStatus, Runtime

    n, runs, variant = int(spec["n"]), int(spec.get("runs", 3)), spec["variant"]
    src, eid = _resume_store_file(spec, n)
    fn = _steps_function("bench:resume", then_wait=True)
    with tempfile.TemporaryDirectory(dir=spec.get("tmp_dir")) as tmp:
        path = Path(tmp) / "resume.sqlite3"
        shutil.copy(src, path)
        if variant == "memory":  # record it in memory: fast, and the same journal
            store = _store("memory", path)
            Runtime(store).run(fn, n, execution_id=eid)
        else:
            store = _store(variant, path)
        rt = Runtime(store, functions=[fn])

        def one(_size: int) -> None:  # the journal fixes the size: warm-up replays it too
            ex = rt.run_once(eid)
            if ex is None or ex.status is not ExecutionStatus.RUNNING:
                raise SystemExit(f"resume did not suspend at the wait: {ex}")

        seconds = repeat(one, n, runs)
        replayed = sum(1 for op in store.load_operations(eid) if op.name != "pause")
        store.close()
    if replayed != n:
        raise SystemExit(f"journal holds {replayed} steps, expected {n}")
    return {
        "seconds": seconds,
        "how": "Runtime.run_once on an execution with N recorded steps then a long wait: "
        "lease, load journal, replay N steps, suspend, finish_invocation",
    }


def op_import(spec: Spec) -> dict[str, Any]:
    runs = int(spec.get("runs", 1))
    return {
        "modules": {
            "durable_core": import_time("durable_core", runs),
            "saga": import_time("saga", runs),
            "pydantic, tenacity, structlog": import_time("pydantic, tenacity, structlog", runs),
        }
    }


def op_memory(spec: Spec) -> dict[str, Any]:
    base = max_rss_mb()
    import durable_core  # noqa: F401
    import saga  # noqa: F401

    imported = max_rss_mb()
    op_steps({**spec, "runs": 1})
    return {"rss_mb": {"start": base, "import": imported, "after_run": max_rss_mb()}}


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main(
        {"steps": op_steps, "resume": op_resume, "import": op_import, "memory": op_memory},
        system="durable-saga",
        cleanup=_cleanup,
    )
