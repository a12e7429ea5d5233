"""Generated scenarios on real worker processes over one SQLite file, killed with SIGKILL.

Each scenario gets a directory: the program and schedule (``scenario.json``), the SQLite
store, a SQLite ledger (the providers, shared by every process) and a clock file (the
virtual time every process reads, moved only by the driver, so an hour's wait still costs
nothing). The driver is :class:`scenarios.drive.Driver` - the same schedule logic as in
process - except that each invocation is a fresh worker process
(``python -m scenarios.proc_worker``) and a worker may be killed with ``SIGKILL``: either by
itself at a planned checkpoint write (before or after it - an exact boundary), or by the
driver at a random moment after it started. After a kill the next worker takes over once
the dead worker's lease expired, as in production.

Invariants:
- The driver never acts while a worker runs (it waits for the process), so the only
  concurrency is the one of a dying worker: whatever it wrote before the kill.
- The expected end is the oracle's, exactly as for the in-process runs: a kill must change
  nothing observable.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from durable_core import Execution, SQLiteStore
from durable_core.testing.clock import DEFAULT_START
from scenarios import drive
from scenarios.interpret import LedgerState
from scenarios.programs import Program, Schedule, to_json
from scenarios.schedules import scenarios

ROOT = Path(__file__).resolve().parents[3]
WORKER_TIMEOUT_S = 120.0
Kill = tuple[str, float, str]
"""``("boundary", k, "before"|"after")`` or ``("random", seconds, "")``."""


class FileClock:
    """A virtual clock kept in a file, so every process of a scenario sees the same time."""

    def __init__(self, path: Path, start: datetime | None = None) -> None:
        self.path = path
        if start is not None:
            self._write(start)

    def now(self) -> datetime:
        return datetime.fromisoformat(self.path.read_text())

    def set(self, when: datetime) -> None:
        if when > self.now():
            self._write(when)

    def advance(self, delta: timedelta) -> datetime:
        self.set(self.now() + delta)
        return self.now()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(timedelta(seconds=seconds))

    def _write(self, when: datetime) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(when.astimezone(UTC).isoformat())
        os.replace(tmp, self.path)


class SqliteLedger:
    """A :class:`scenarios.interpret.Ledger` in a SQLite file shared by all processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            for table in (
                "requests (n INTEGER PRIMARY KEY, action, path)",
                "effects (n INTEGER PRIMARY KEY, action, path, UNIQUE (action, path))",
                "flags (flag PRIMARY KEY)",
                "violations (n INTEGER PRIMARY KEY, text)",
            ):
                db.execute(f"CREATE TABLE IF NOT EXISTS {table}")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")

    def do(self, path: str) -> None:
        with self._db() as db:
            db.execute("INSERT INTO requests (action, path) VALUES ('do', ?)", (path,))
            db.execute("INSERT OR IGNORE INTO effects (action, path) VALUES ('do', ?)", (path,))

    def undo(self, path: str) -> None:
        with self._db() as db:
            db.execute("INSERT INTO requests (action, path) VALUES ('undo', ?)", (path,))
            if db.execute("SELECT 1 FROM effects WHERE action='do' AND path=?", (path,)).fetchone():
                db.execute(
                    "INSERT OR IGNORE INTO effects (action, path) VALUES ('undo', ?)", (path,)
                )

    def marked(self, flag: str) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM flags WHERE flag=?", (flag,)).fetchone() is not None

    def mark(self, flag: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO flags VALUES (?)", (flag,))

    def violation(self, text: str) -> None:
        with self._db() as db:
            db.execute("INSERT INTO violations (text) VALUES (?)", (text,))

    def snapshot(self) -> LedgerState:
        with self._db() as db:
            q = "SELECT action, path FROM {} ORDER BY n"
            return LedgerState(
                [(a, p) for a, p in db.execute(q.format("requests"))],
                [(a, p) for a, p in db.execute(q.format("effects"))],
                [t for (t,) in db.execute("SELECT text FROM violations ORDER BY n")],
            )


def files(directory: Path) -> tuple[Path, Path, Path, Path]:
    """(scenario.json, store, ledger, clock) of a scenario directory."""
    return (
        directory / "scenario.json",
        directory / "durable.sqlite3",
        directory / "ledger.sqlite3",
        directory / "clock.txt",
    )


class ProcessDriver(drive.Driver):
    """:class:`scenarios.drive.Driver` whose invocations are worker processes."""

    def __init__(
        self, program: Program, schedule: Schedule, directory: Path, kills: list[Kill]
    ) -> None:
        scenario, store, ledger, clock = files(directory)
        schedule = replace(schedule, crash=None)  # workers die by SIGKILL, not in-process
        scenario.write_text(to_json(program, schedule))
        self.directory = directory
        self.kills = list(kills)
        self.killed = 0
        super().__init__(
            program,
            schedule,
            store=SQLiteStore(store),
            clock=FileClock(clock, DEFAULT_START),
            ledger=SqliteLedger(ledger),
        )

    def invoke(self) -> Execution | None:
        plan = self.kills.pop(0) if self.kills else None
        cmd = [sys.executable, "-m", "scenarios.proc_worker", str(self.directory)]
        if plan is not None and plan[0] == "boundary":
            cmd += ["--kill-at", str(int(plan[1])), "--point", plan[2]]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests/saga")])}
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if plan is not None and plan[0] == "random":
            try:
                proc.wait(timeout=plan[1])
            except subprocess.TimeoutExpired:
                proc.kill()  # SIGKILL
        try:
            _, err = proc.communicate(timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode == -9:
            self.killed += 1
            self.recover()
            return None
        if proc.returncode != 0:
            self.obs.violations.append(
                f"worker exited {proc.returncode}: {err.decode(errors='replace')[-600:]}"
            )
        return self.base.get_execution(drive.EXECUTION_ID)


@dataclass
class SampleResult:
    """What a real-process sample did."""

    scenarios: int = 0
    failures: int = 0
    kills: int = 0
    details: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"processes: scenarios={self.scenarios} failures={self.failures}"


def draw_sample(count: int, seed_value: int) -> list[tuple[Program, Schedule, list[Kill]]]:
    """``count`` generated scenarios and kill plans (seeded)."""
    out: list[tuple[Program, Schedule, list[Kill]]] = []
    rng = random.Random(seed_value)

    @seed(seed_value)
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(scenarios(crash=True))
    def collect(scenario: tuple[Program, Schedule]) -> None:
        if len(out) >= count:
            return
        program, schedule = scenario
        points = ("before", "after")
        kills: list[Kill] = [("boundary", 1, rng.choice(points))]  # its first write: sure
        if rng.random() < 0.5:  # a second worker dies too: at a boundary, or at a random time
            if rng.random() < 0.5:
                kills.append(("boundary", rng.randint(1, 4), rng.choice(points)))
            else:
                kills.append(("random", rng.uniform(0.3, 1.2), ""))
        # The schedule says a worker dies (for the oracle's recovery rule); the kills say how.
        out.append((program, replace(schedule, crash=(1, kills[0][2])), kills))

    collect()
    return out


def run_sample(count: int, seed_value: int) -> SampleResult:
    """Run ``count`` generated scenarios on real worker processes, with SIGKILLs."""
    result = SampleResult()
    for program, schedule, kills in draw_sample(count, seed_value):
        with tempfile.TemporaryDirectory(prefix="scenario-proc-") as tmp:
            started = time.monotonic()
            driver = ProcessDriver(program, schedule, Path(tmp), kills)
            observed = driver.run()
            found = drive.problems(program, schedule, observed)
        result.scenarios += 1
        result.kills += driver.killed
        if found:
            result.failures += 1
            result.details.append(f"FAIL {to_json(program, schedule)} kills={kills}")
            result.details.extend(f"  - {p[:300]}" for p in found)
        else:
            result.details.append(
                f"ok   {len(program.ops)} ops, kills {driver.killed}/{len(kills)}, "
                f"{time.monotonic() - started:.1f}s"
            )
    return result
