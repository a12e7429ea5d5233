"""DBOS Transact on SQLite under the peer benchmark protocol (see ``_common.py``).

(Named ``dbos_transact.py``, not ``dbos.py``: a script's folder is first on ``sys.path``,
so ``dbos.py`` would shadow the package.)

DBOS is configured with ``system_database_url="sqlite:///<file>"``, its documented way to
run on SQLite (the default when no URL is given is also a SQLite file). Variants:

- ``sqlite``: DBOS's SQLite settings as shipped: SQLite's default rollback journal and its
  default ``synchronous=FULL`` (fsync per commit), ``BEGIN IMMEDIATE`` transactions.
- ``sqlite-wal``: the same, on a file switched to WAL before DBOS opens it (WAL is a
  persistent property of the file; DBOS keeps ``synchronous`` at the default FULL, so a
  commit is still fsync'd). Same durability, the journal mode durable-saga uses.

Workflow: ``@DBOS.workflow() def steps(n)`` calling ``@DBOS.step() def trivial(i)`` n
times, called directly (DBOS runs it in the calling thread and records the workflow's
status, each step's output and the result in the system database).

Resume: DBOS resumes a workflow by *recovery*: a process that finds a PENDING workflow of
its executor re-runs it from the top and each recorded step returns its stored output.
The honest equivalent of "resume an N-step journal": a helper process runs ``steps`` and
``os._exit``s right after step N (a crash); that file is cached and copied per sample; a
fresh process launches DBOS on the copy, whose startup recovery re-runs the workflow.
Timed: the workflow body, from its first line (before the N recorded steps) to its end —
DBOS's queue polling (up to 1 s before a recovered workflow is picked up) is excluded and
reported separately as ``launch_to_done``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import Spec, import_time, main, max_rss_mb, repeat

VARIANTS = ("sqlite", "sqlite-wal")
APP_VERSION = "bench-1"
_marks: dict[str, float] = {}
_done = threading.Event()
_registered: dict[str, Any] = {}


def _register() -> dict[str, Any]:
    """Declare the step and workflows once (DBOS registers them at decoration time)."""
    if _registered:
        return _registered
    from dbos import DBOS

    @DBOS.step()  # type: ignore[untyped-decorator]  # dbos is not in the project venv
    def trivial(i: int) -> int:
        return i

    @DBOS.workflow()  # type: ignore[untyped-decorator]
    def steps(n: int) -> int:
        total = 0
        for i in range(n):
            total += trivial(i)
        return total

    @DBOS.workflow()  # type: ignore[untyped-decorator]
    def steps_then_crash(n: int) -> int:
        _marks["entry"] = time.perf_counter()
        total = 0
        for i in range(n):
            total += trivial(i)
        if os.environ.get("BENCH_DBOS_CRASH") == "1":
            os._exit(0)  # a crash right after step n: the workflow stays PENDING
        _marks["end"] = time.perf_counter()
        _done.set()
        return total

    _registered.update(trivial=trivial, steps=steps, steps_then_crash=steps_then_crash)
    return _registered


def _launch(path: Path, variant: str) -> None:
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; known: {VARIANTS}")
    if variant == "sqlite-wal":
        con = sqlite3.connect(path)
        con.execute("PRAGMA journal_mode=WAL")
        con.close()
    _register()
    from dbos import DBOS

    DBOS(
        config={
            "name": "bench",
            "system_database_url": f"sqlite:///{path}",
            "application_version": APP_VERSION,
            "log_level": "WARNING",
        }
    )
    DBOS.launch()


_server: dict[str, Any] = {}


def _launched(spec: Spec) -> None:
    """Launch DBOS once per process on a fresh file (a server process serves one variant)."""
    if _server:
        if _server["variant"] != spec["variant"]:
            raise SystemExit("one DBOS process serves one variant")
        return
    tmp = tempfile.mkdtemp(prefix="bench-dbos-", dir=spec.get("tmp_dir"))
    _server.update(variant=spec["variant"], tmp=tmp)
    _launch(Path(tmp) / "dbos.sqlite3", spec["variant"])


def op_steps(spec: Spec) -> dict[str, Any]:
    _launched(spec)
    n, runs = int(spec["n"]), int(spec.get("runs", 3))
    steps = _register()["steps"]

    def one(size: int) -> None:
        if steps(size) != size * (size - 1) // 2:
            raise SystemExit("wrong result")

    return {"seconds": repeat(one, n, runs)}


def _crashed_file(spec: Spec, n: int) -> Path:
    """A cached SQLite file with one PENDING ``steps_then_crash(n)`` whose n steps ran."""
    import dbos

    cache = Path(spec["cache_dir"])
    cache.mkdir(parents=True, exist_ok=True)
    version = getattr(dbos, "__version__", None) or _dist_version()
    path = cache / f"dbos-{version}-{spec['variant']}-crash-{n}.sqlite3"
    if not path.exists():
        building = path.with_suffix(".building")
        for leftover in cache.glob(building.name + "*"):
            leftover.unlink()
        child = {"op": "_record_crash", "variant": spec["variant"], "n": n, "db": str(building)}
        env = {**os.environ, "BENCH_DBOS_CRASH": "1"}
        subprocess.run(
            [sys.executable, __file__, json.dumps(child)], env=env, check=True, timeout=3600
        )
        con = sqlite3.connect(building)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        status = con.execute(
            "SELECT status FROM workflow_status WHERE name LIKE '%steps_then_crash'"
        ).fetchall()
        con.close()
        if status != [("PENDING",)]:
            raise SystemExit(f"crash setup left {status}, expected one PENDING workflow")
        shutil.move(building, path)
    return path


def _dist_version() -> str:
    from importlib.metadata import version

    return version("dbos")


def op_record_crash(spec: Spec) -> dict[str, Any]:
    _launch(Path(spec["db"]), spec["variant"])
    from dbos import SetWorkflowID

    with SetWorkflowID(f"resume-{spec['n']}"):
        _register()["steps_then_crash"](int(spec["n"]))
    raise SystemExit("steps_then_crash returned; BENCH_DBOS_CRASH was not set")


def op_recover(spec: Spec) -> dict[str, Any]:
    """One sample: launch DBOS on a copy of the crashed file and time the recovered run."""
    src = Path(spec["src"])
    with tempfile.TemporaryDirectory(dir=spec.get("tmp_dir")) as tmp:
        path = Path(tmp) / "dbos.sqlite3"
        shutil.copy(src, path)
        start = time.perf_counter()
        _launch(path, spec["variant"])
        if not _done.wait(600):
            raise SystemExit("recovery did not finish within 600 s")
        launch_to_done = time.perf_counter() - start
        from dbos import DBOS

        steps = DBOS.list_workflow_steps(f"resume-{spec['n']}")
        DBOS.destroy()
    if len(steps) != int(spec["n"]):
        raise SystemExit(f"recovered workflow has {len(steps)} steps, expected {spec['n']}")
    return {"seconds": _marks["end"] - _marks["entry"], "launch_to_done": launch_to_done}


def op_resume(spec: Spec) -> dict[str, Any]:
    n, runs = int(spec["n"]), int(spec.get("runs", 1))
    src = _crashed_file(spec, n)
    seconds: list[float] = []
    launch_to_done: list[float] = []
    for _ in range(runs):
        child = {"op": "_recover", "variant": spec["variant"], "n": n, "src": str(src)}
        child["tmp_dir"] = spec.get("tmp_dir")
        out = (
            subprocess.run(
                [sys.executable, __file__, json.dumps(child)],
                capture_output=True,
                text=True,
                check=True,
                timeout=900,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        result = json.loads(out)
        seconds.append(result["seconds"])
        launch_to_done.append(result["launch_to_done"])
    return {
        "seconds": seconds,
        "launch_to_done": launch_to_done,
        "how": "recovery of a workflow whose N steps were recorded before its process "
        "crashed: a fresh process launches DBOS on a copy of the file; timed: the workflow "
        "body from its first line to its end (queue pick-up latency excluded)",
    }


def op_import(spec: Spec) -> dict[str, Any]:
    return {"modules": {"dbos": import_time("dbos", int(spec.get("runs", 1)))}}


def op_memory(spec: Spec) -> dict[str, Any]:
    base = max_rss_mb()
    import dbos  # noqa: F401

    imported = max_rss_mb()
    op_steps({**spec, "runs": 1})
    after = max_rss_mb()
    from dbos import DBOS

    DBOS.destroy()
    return {"rss_mb": {"start": base, "import": imported, "after_run": after}}


def _destroy() -> None:
    if _server:
        from dbos import DBOS

        DBOS.destroy()
        shutil.rmtree(_server["tmp"], ignore_errors=True)


if __name__ == "__main__":
    main(
        {
            "steps": op_steps,
            "resume": op_resume,
            "import": op_import,
            "memory": op_memory,
            "_record_crash": op_record_crash,
            "_recover": op_recover,
        },
        system="dbos",
        cleanup=_destroy,
    )
