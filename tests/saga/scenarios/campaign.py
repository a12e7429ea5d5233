"""A run of many generated scenarios: counting, grouping failures, shrinking one per class.

Used by the long run (``python -m bench.scenarios``) and by the suite's crash sweep. Each
scenario is a generated program and schedule, run once on the memory store (every
``sqlite_every``-th on a SQLite file), and every ``sweep_every``-th one also crashed at
every checkpoint boundary (before and after each write of its run), each crashed run
compared with the oracle like the others.

Invariants:
- Generation is hypothesis's, seeded: the same ``seed`` and ``count`` give the same
  scenarios; another seed gives others (the long run is asked for unseen ones).
- A failure is never raised out of :func:`run_campaign`: it is recorded, grouped by its
  :func:`scenarios.drive.signature`, and the smallest example of each class is kept as a
  JSON line that :func:`scenarios.programs.scenario_from_json` replays.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, Phase, find, given, seed, settings

from scenarios import drive
from scenarios.programs import Program, Schedule, to_json
from scenarios.schedules import scenarios


@dataclass
class Summary:
    """What a campaign did."""

    scenarios: int = 0
    runs: int = 0
    """Executions run (a crash sweep runs one per boundary)."""
    failures: int = 0
    classes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    """Per failure class: the shortest scenario JSON seen and its problems."""
    statuses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def line(self) -> str:
        """The summary line (printed last by the long run)."""
        return f"scenarios={self.scenarios} failures={self.failures}"


def check_one(
    program: Program, schedule: Schedule, *, sqlite: bool = False, surface: str = "sync"
) -> list[str]:
    """Run one scenario (as a sync or an async saga) and compare it with the oracle; a
    driver crash is a problem too."""
    try:
        observed = drive.run(program, schedule, sqlite=sqlite, surface=surface)
    except Exception as e:  # the engine raised out of drive(): that is a finding
        return [f"driver: {type(e).__name__}: {e}", traceback.format_exc(limit=-3)]
    return drive.problems(program, schedule, observed)


def sweep(program: Program, schedule: Schedule, *, surface: str = "sync") -> tuple[int, list[str]]:
    """Crash at every checkpoint write (before and after); return (runs, first problems)."""
    base = replace(schedule, crash=None)
    observed = drive.run(program, base, surface=surface)
    found = drive.problems(program, base, observed)
    runs = 1
    if found:
        return runs, found
    for k in range(1, observed.writes + 1):
        for point in ("before", "after"):
            crashed = replace(base, crash=(k, point))
            runs += 1
            found = check_one(program, crashed, surface=surface)
            if found:
                return runs, [f"crash {point} write {k}: {p}" for p in found]
    return runs, []


def sweepable(schedule: Schedule) -> bool:
    """Requests that stay at the same place when crashes shift time (see schedules)."""
    stop, later = schedule.stop, schedule.terminate_at
    if later is not None and not later.startswith("wait:operator:"):
        return False
    return stop is None or (stop.kind != "deadline" and not stop.at.startswith("wait:"))


def run_campaign(
    count: int,
    seed_value: int,
    *,
    sweep_every: int = 20,
    sqlite_every: int = 25,
    hostile: bool = True,
    crash: bool | None = None,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Generate and check ``count`` scenarios from ``seed_value``."""
    summary = Summary()
    started = time.monotonic()

    @seed(seed_value)
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(scenarios(crash=crash, hostile=hostile))
    def one(scenario: tuple[Program, Schedule]) -> None:
        if summary.scenarios >= count:
            return
        program, schedule = scenario
        n = summary.scenarios = summary.scenarios + 1
        if n % sweep_every == 0 and sweepable(schedule):
            runs, found = sweep(program, schedule)
            summary.runs += runs
        else:
            summary.runs += 1
            found = check_one(program, schedule, sqlite=n % sqlite_every == 0)
        if found:
            record(summary, program, schedule, found)
        if progress is not None and n % 500 == 0:
            progress(summary)

    one()
    summary.seconds = time.monotonic() - started
    return summary


def record(summary: Summary, program: Program, schedule: Schedule, found: list[str]) -> None:
    """Count a failure under its class; keep the class's shortest example."""
    summary.failures += 1
    key = drive.signature(found)
    summary.classes[key] += 1
    text = to_json(program, schedule)
    kept = summary.examples.get(key)
    if kept is None or len(text) < len(kept[0]):
        summary.examples[key] = (text, found)


def shrink(
    key: str, *, max_examples: int = 3000, hostile: bool = True
) -> tuple[Program, Schedule] | None:
    """The smallest generated scenario failing with class ``key`` (hypothesis shrinking)."""

    def fails(scenario: tuple[Program, Schedule]) -> bool:
        program, schedule = scenario
        if schedule.crash is not None:
            return False
        return drive.signature(check_one(program, schedule)) == key

    try:
        return find(
            scenarios(crash=False, hostile=hostile),
            fails,
            settings=settings(
                max_examples=max_examples,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    except Exception:  # hypothesis.errors.NoSuchExample, or Unsatisfiable
        return None
