"""Concurrency: W real worker processes on one store drive N executions with timers and callbacks.

    .venv/bin/python bench/concurrency.py --store sqlite --executions 1000 --workers 4
    .venv/bin/python bench/concurrency.py --store dynamodb --executions 150 --workers 4

Each execution (``concurrency_flow.flow``) runs two steps, a durable 1 s wait, a
``wait_for_callback`` whose token the harness's feeder thread completes through
``Runtime.send_callback_success`` (half at once, half once the execution waits), and a
last step. The N executions are started while W worker processes (``durable_core.Worker`` on an
audited store, lease TTL ``--lease-ttl``) are already running. During the run:

- ``--kills`` workers are killed with SIGKILL at random points (seeded; after a random
  share of all step bodies has run), so their leases must expire and be recovered;
- one other worker is frozen (SIGSTOP) inside a step body, holding its lease, until
  another worker has taken that execution over, then resumed (SIGCONT): its checkpoint
  under the old fence must be refused (``refused_stale_writes``).

At the end the workers are stopped (SIGTERM) and ``concurrency_check`` reads the audit
log, the side ledger and the store: see its docstring for each count. A per-worker table
is printed, then the summary line LAST; the exit code is 1 if any count that must be 0 is
not. Results go to ``bench/results/concurrency.json`` (one entry per store kind).

DynamoDB: without ``--endpoint``, DynamoDB Local (``tools/ddb_local``) runs for the run;
each run uses a new table, deleted after. ``bench/README.md`` explains the checks.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported from the tests: the siblings below
    sys.path.append(str(HERE))

import concurrency_check as check  # noqa: E402
import concurrency_flow as cf  # noqa: E402

from durable_core import CallbackAlreadyCompletedError, Runtime, Store  # noqa: E402

RESULTS = HERE / "results" / "concurrency.json"
STEP_BODIES_PER_EXECUTION = len(cf.STEPS)


@dataclass(frozen=True)
class Config:
    store: str = "sqlite"
    executions: int = 1000
    workers: int = 4
    concurrency: int = 1  # executions each worker process runs at once (Worker concurrency)
    kills: int = 1
    stall: bool = True
    lease_ttl: float = 2.0
    poll: float = 0.1
    seed: int | None = None
    timeout: float = 900.0
    endpoint: str | None = None
    unfenced: bool = False  # negative control: the workers' SQLite store ignores fences


class Backend:
    """The store under test, as the harness sees it and as the workers are told to open it."""

    def __init__(self, config: Config, tmp: Path) -> None:
        self.kind = config.store
        self.path = str(tmp / "store.sqlite3") if self.kind == "sqlite" else None
        self.table = f"concurrency-{uuid.uuid4().hex[:10]}" if self.kind == "dynamodb" else None
        self.endpoint = config.endpoint
        self.store: Store = cf.open_store(self.kind, self.path, self.table, self.endpoint)
        if self.kind == "dynamodb":
            self.store.create_table()  # type: ignore[attr-defined]
        self._count_db = sqlite3.connect(self.path, timeout=60) if self.path else None

    def worker_args(self) -> list[str]:
        args = ["--store", self.kind]
        for flag, value in (("--path", self.path), ("--table", self.table)):
            args += [flag, value] if value else []
        return args + (["--endpoint", self.endpoint] if self.endpoint else [])

    def running(self, limit: int) -> int:
        """How many executions are still RUNNING."""
        if self._count_db is not None:
            sql = "SELECT count(*) FROM executions WHERE status = 'RUNNING'"
            return int(self._count_db.execute(sql).fetchone()[0])
        from durable_core import ExecutionStatus

        return len(self.store.list_executions(status=ExecutionStatus.RUNNING, limit=limit))

    def close(self) -> None:
        if self._count_db is not None:
            self._count_db.close()
        if self.kind == "dynamodb":
            self.store._client.delete_table(TableName=self.table)  # type: ignore[attr-defined]
        self.store.close()


def feed(rt: Runtime, ledger_path: Path, stop: threading.Event, stats: Counter[str]) -> None:
    """Complete every published callback token once, through the Runtime API.

    Executions with an even number get their answer at once (often while the invocation
    that published the token is still running: the no-lost-wake-up path); odd ones only
    once the execution is suspended waiting for it (no worker holds it).
    """
    db = cf.ledger(ledger_path)
    last, pending, done = 0, dict[str, str](), set[str]()
    try:
        while not stop.is_set():
            for row in db.rows(
                "SELECT * FROM tokens WHERE seq > :last ORDER BY seq", {"last": last}
            ):
                last = row["seq"]
                if row["token"] in done or row["token"] in pending:
                    stats["tokens_published_again"] += 1
                else:
                    pending[row["token"]] = row["execution_id"]
            for token, eid in list(pending.items()):
                early = int(eid.rsplit("-", 1)[1]) % 2 == 0
                try:
                    if not early and rt.get(eid).lease_owner is not None:
                        continue  # still running: answer once it waits
                    rt.send_callback_success(token, cf.answer_for(eid))
                    stats["callbacks_completed"] += 1
                    stats["answered_at_once" if early else "answered_while_waiting"] += 1
                except CallbackAlreadyCompletedError:
                    stats["callbacks_already_completed"] += 1
                except Exception:  # a busy store: try again next round
                    stats["callback_send_errors"] += 1
                    continue
                done.add(pending.pop(token))
            stop.wait(0.05)
    finally:
        db.close()


class Workers:
    """The worker processes, and what was done to them."""

    def __init__(self, config: Config, backend: Backend, tmp: Path) -> None:
        self.control = tmp / "control"
        self.control.mkdir()
        self.logs = [tmp / f"worker-{i}.log" for i in range(config.workers)]
        common = [
            *backend.worker_args(),
            *("--audit", str(tmp / "audit.sqlite3"), "--ledger", str(tmp / "ledger.sqlite3")),
            *("--control", str(self.control), "--lease-ttl", str(config.lease_ttl)),
            *("--poll", str(config.poll), "--concurrency", str(config.concurrency)),
            *(["--unfenced"] if config.unfenced else []),
        ]
        self.procs: list[subprocess.Popen[bytes]] = []
        for log in self.logs:
            with log.open("wb") as out:
                cmd = [sys.executable, str(HERE / "concurrency_flow.py"), *common]
                self.procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
        self.fate = {p.pid: "ran to the end" for p in self.procs}
        self.killed: list[int] = []
        deadline = time.monotonic() + 120
        while not all("ready" in log.read_text() for log in self.logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                self.stop()
                raise SystemExit(f"a worker did not start; see {self.logs}")
            time.sleep(0.05)

    def live(self, exclude: int | None = None) -> list[int]:
        gone = {exclude, *self.killed}
        return [p.pid for p in self.procs if p.poll() is None and p.pid not in gone]

    def kill(self, pid: int, note: str) -> None:
        os.kill(pid, signal.SIGKILL)
        self.killed.append(pid)
        self.fate[pid] = f"SIGKILL {note}"

    def stop(self) -> dict[int, int | None]:
        """SIGCONT then SIGTERM every live worker; wait for them to exit."""
        for pid in self.live():
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
        codes: dict[int, int | None] = {}
        for p in self.procs:
            try:
                codes[p.pid] = p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[p.pid] = p.wait(timeout=10)
                self.fate[p.pid] += "; did not stop on SIGTERM"
        return codes


class Stall:
    """Freeze one worker inside a step body until another takes its execution over.

    "Taken over" is read from the audit log: a lease on that execution granted to another
    worker under a higher fence. So the grant is logged before the frozen worker resumes,
    and every write it attempts afterwards is ordered after that grant.
    """

    _TAKEN = (
        "SELECT count(*) AS n FROM audit WHERE kind = 'grant' AND execution_id = :eid "
        "AND pid != :pid AND fence > (SELECT max(fence) FROM audit WHERE kind = 'grant' "
        "AND execution_id = :eid AND pid = :pid)"
    )

    def __init__(self, workers: Workers, audit: cf.SideDB, pid: int, patience: float) -> None:
        self.workers, self.audit, self.pid, self.patience = workers, audit, pid, patience
        self.request = workers.control / f"stall-{pid}"
        self.note = workers.control / f"stalled-{pid}"
        self.request.write_text("stall")
        self.state = "requested"
        self.info: dict[str, Any] = {"pid": pid, "retries": 0}
        self._since = 0.0

    def poll(self, *, finished: bool) -> bool:
        """Advance; True once the stall is over (or was never taken up)."""
        if self.state == "requested":
            if self.note.exists():
                self.info |= json.loads(self.note.read_text())
                self.note.unlink()
                self.state, self._since = "stopped", time.monotonic()
            elif finished:
                self.request.unlink(missing_ok=True)
                self.state = "not taken up"
        if self.state == "stopped":
            where = {"eid": self.info["execution_id"], "pid": self.pid}
            if self.audit.rows(self._TAKEN, where)[0]["n"] > 0:
                os.kill(self.pid, signal.SIGCONT)
                self.info |= {"taken_over": True, "stopped_s": self._elapsed()}
                self.workers.fate[self.pid] = (
                    f"SIGSTOP in step {self.info['step']!r} of {self.info['execution_id']}, "
                    f"SIGCONT after {self.info['stopped_s']:.1f} s"
                )
                self.state = "resumed"
            elif time.monotonic() - self._since > self.patience:
                # Frozen while another of its threads held a lock every worker needs (the
                # lease keeper mid-commit): nobody could take over. Resume it, try again.
                os.kill(self.pid, signal.SIGCONT)
                self.info["retries"] += 1
                self.info["taken_over"] = False
                if self.info["retries"] < 3:
                    self.request.write_text("stall")
                self.state = "requested" if self.info["retries"] < 3 else "gave up"
        self.info["state"] = self.state
        return self.state in ("resumed", "not taken up", "gave up")

    def _elapsed(self) -> float:
        return round(time.monotonic() - self._since, 2)


def run(config: Config, work_dir: Path | None = None, *, keep: bool = False) -> dict[str, Any]:
    """One run; returns the result (verdict counts, disruptions, per-worker rows).

    ``keep``: leave the store, audit log, ledger and worker logs in a new directory under
    ``work_dir`` (its path is in the result) instead of deleting them.
    """
    if config.kills + (1 if config.stall else 0) >= config.workers:
        raise SystemExit("need more workers than killed + stalled ones")
    rng = random.Random(config.seed)
    tmp = Path(tempfile.mkdtemp(prefix="concurrency-", dir=work_dir))
    backend = Backend(config, tmp)
    try:
        return {**_run(config, backend, tmp, rng), "kept": str(tmp) if keep else None}
    finally:
        backend.close()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(config: Config, backend: Backend, tmp: Path, rng: random.Random) -> dict[str, Any]:
    n = config.executions
    bodies = n * STEP_BODIES_PER_EXECUTION
    kill_at = sorted(rng.uniform(0.15, 0.6) * bodies for _ in range(config.kills))
    stall_at = rng.uniform(0.1, 0.5) * bodies if config.stall else None
    rt = Runtime(backend.store, functions=[cf.flow])
    ledger = cf.ledger(tmp / "ledger.sqlite3")
    audit = cf.audit_db(tmp / "audit.sqlite3")
    workers = Workers(config, backend, tmp)
    stop, feeder_stats = threading.Event(), Counter[str]()
    feeder = threading.Thread(target=feed, args=(rt, tmp / "ledger.sqlite3", stop, feeder_stats))
    feeder.start()
    stall: Stall | None = None
    t0 = time.perf_counter()
    started = [f"cc-{i:05d}" for i in range(n)]
    try:
        for eid in started:
            rt.start(cf.flow, cf.order_for(eid), execution_id=eid)
        deadline = time.monotonic() + config.timeout
        while time.monotonic() < deadline:
            ran = ledger.rows("SELECT count(*) AS n FROM effects")[0]["n"]
            while kill_at and ran >= kill_at[0]:
                kill_at.pop(0)
                pid = rng.choice(workers.live(exclude=stall.pid if stall else None))
                workers.kill(pid, f"after {ran}/{bodies} step bodies")
            if stall_at is not None and ran >= stall_at and stall is None:
                pid = rng.choice(workers.live())
                stall = Stall(workers, audit, pid, max(15.0, 5 * config.lease_ttl))
            finished = backend.running(n + 1) == 0
            stall_over = stall.poll(finished=finished) if stall is not None else stall_at is None
            if finished and stall_over and not kill_at:
                break
            time.sleep(0.1)
        seconds = time.perf_counter() - t0
    finally:
        stop.set()
        feeder.join()
        codes = workers.stop()
    audit_rows = [dict(r) for r in audit.rows("SELECT * FROM audit ORDER BY seq")]
    effects = [dict(r) for r in ledger.rows("SELECT * FROM effects ORDER BY seq")]
    audit.close()
    ledger.close()
    executions = {eid: check.read_execution(rt, eid) for eid in started}
    verdict = check.check_all(audit_rows, effects, started, executions, workers.killed)
    crashed = [pid for pid, code in codes.items() if code != 0 and pid not in workers.killed]
    return {
        "store": config.store,
        "config": asdict(config),
        "seconds": round(seconds, 2),
        "verdict": verdict.as_dict(),
        "ok": verdict.ok and not crashed,
        "timed_out": seconds >= config.timeout,
        "crashed_workers": crashed,
        "killed": len(workers.killed),
        "stall": stall.info if stall else None,
        "feeder": dict(feeder_stats),
        "workers": check.worker_rows(workers.fate, codes, audit_rows, effects),
    }


@contextmanager
def dynamodb_local(store: str, endpoint: str | None) -> Iterator[str | None]:
    """The endpoint to use: the one given, or a DynamoDB Local started for the run."""
    if store != "dynamodb" or endpoint is not None:
        yield endpoint
        return
    path = HERE.parent / "tools" / "ddb_local" / "ddblocal.py"
    spec = importlib.util.spec_from_file_location("ddblocal", path)
    assert spec is not None
    assert spec.loader is not None
    tool = sys.modules.setdefault("ddblocal", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(tool)
    with tool.running() as server:
        yield str(server.endpoint)


def save(result: dict[str, Any], path: Path = RESULTS) -> None:
    saved = json.loads(path.read_text()) if path.exists() else {}
    loops = result["config"].get("concurrency", 1)
    saved[result["store"] + (f" x{loops}" if loops > 1 else "")] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", choices=["sqlite", "dynamodb"], default="sqlite")
    p.add_argument("--executions", type=int, help="default: 1000 (sqlite), 150 (dynamodb)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=1, help="executions each worker runs at once")
    p.add_argument("--kills", type=int, default=1, help="workers to SIGKILL mid-run")
    p.add_argument("--no-stall", action="store_true", help="do not SIGSTOP a worker mid-step")
    p.add_argument("--lease-ttl", type=float, default=2.0, help="seconds (minimum 1)")
    p.add_argument("--poll", type=float, default=0.1, help="worker idle poll seconds")
    p.add_argument("--seed", type=int, help="for the kill and stall points (default: random)")
    p.add_argument("--timeout", type=float, default=900.0, help="give up after this many s")
    p.add_argument("--endpoint", help="dynamodb: an already running DynamoDB Local")
    p.add_argument("--results", type=Path, default=RESULTS, help="JSON file to update")
    p.add_argument("--keep", action="store_true", help="keep the store, logs and ledger")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    executions = args.executions or (1000 if args.store == "sqlite" else 150)
    with dynamodb_local(args.store, args.endpoint) as endpoint:
        config = Config(
            store=args.store,
            executions=executions,
            workers=args.workers,
            concurrency=args.concurrency,
            kills=args.kills,
            stall=not args.no_stall,
            lease_ttl=args.lease_ttl,
            poll=args.poll,
            seed=seed,
            timeout=args.timeout,
            endpoint=endpoint,
        )
        result = run(config, keep=args.keep)
    save(result, args.results)
    check.report(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
