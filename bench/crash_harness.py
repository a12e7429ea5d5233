"""Crash harness: kill -9 real workers running the example sagas, resume, count what broke.

    .venv/bin/python bench/crash_harness.py --runs 500 --seed 1     # or: -m bench.crash_harness

Scenarios: the tour saga (examples/tour_booking: ``tour-booked``; ``tour-car-fails``, which
rolls back) and the order saga (examples/order_processing: ``order-shipped``, the shipper
confirms through its callback; ``order-out-of-stock``, refunded; ``order-shipper-fails``,
the shipper's callback fails and everything is undone). Each run gets its own SQLite store
and ledger files (``DURABLE_STORE``, ``TOUR_LEDGER``, ``ORDER_LEDGER``), starts one
execution and runs ``durable worker --until-idle`` processes (``bench/crash_worker.py``) on
it one after another until the execution has finished; the harness delivers the shipper's
callback (``Runtime.send_callback_success`` / ``_failure``) when the order saga waits for it.

Runs alternate between two kinds of kill, both ``SIGKILL`` sent by this process:

- ``boundary``: the worker freezes at a chosen checkpoint boundary - before or after a
  journal write, an invocation's end, or a provider request made by a step or a
  compensation - and is killed there. The first kill of the n-th such run of a scenario is
  at boundary n of the uninterrupted run, so enough runs kill at every boundary.
- ``random``: the worker is killed a seeded random time after it claimed the execution,
  anywhere (inside a commit, a provider request, replay); half of these runs add seeded
  random latency inside the provider requests, and for the callback scenarios half deliver
  the callback as soon as the shipper received the pickup request, while the saga runs.

After each kill a fresh worker resumes (waiting out the dead worker's 1 s lease) and may
be killed again (probability 1/2, up to ``--max-kills``). The end state is compared with an
uninterrupted run of the same scenario (``crash_checks.compare``). The summary lines are
printed last; the exit code is 1 if any count is not 0. Results go to ``--out``
(default ``bench/results/crash.json``; none with ``--break``, the harness's self-test).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from crash_checks import COUNTS  # noqa: E402
from crash_run import Plan, Reference, Run, RunResult, Scenario  # noqa: E402
from crash_worker import BREAKS  # noqa: E402

from examples.order_processing.services import Item, Order  # noqa: E402

DEFAULT_OUT = HERE / "results" / "crash.json"
_TOUR = "examples.tour_booking.saga:book_tour"
_ORDER = "examples.order_processing.saga:process_order"
_OOS = Order(items=[*Order().items, Item(sku="pho-kit", qty=1, unit_price=9.5)])
SCENARIOS = {
    s.name: s
    for s in (
        Scenario("tour-booked", _TOUR, {}, "tour_ledger.sqlite3"),
        Scenario("tour-car-fails", _TOUR, {"fail_car": True}, "tour_ledger.sqlite3"),
        Scenario("order-shipped", _ORDER, {}, "order_ledger.sqlite3", "succeed"),
        Scenario(
            "order-out-of-stock", _ORDER, _OOS.model_dump(mode="json"), "order_ledger.sqlite3"
        ),
        Scenario("order-shipper-fails", _ORDER, {}, "order_ledger.sqlite3", "fail"),
    )
}
KINDS = ("boundary", "random")
SHORT = {
    "duplicated_effects": "dup_eff",
    "compensations_twice": "undo_2x",
    "compensations_skipped": "undo_skp",
    "ledger_mismatches": "ledger",
    "wrong_outcomes": "outcome",
    "reruns_after_checkpoint": "reruns",
    "worker_errors": "errors",
}
"""Column headings of the table (the summary line spells the counts out)."""


def references(
    scenarios: Sequence[Scenario], base: Path, args: argparse.Namespace
) -> dict[str, Reference]:
    """Run every scenario once without kills (and without ``--break``)."""
    clean = argparse.Namespace(**{**vars(args), "breaks": None})
    refs: dict[str, Reference] = {}
    for i, scenario in enumerate(scenarios):
        plan = Plan(index=-1 - i, scenario=scenario, kind="none")
        done = Run(plan, base / f"reference-{scenario.name}", None, clean).execute()
        outcome = done.outcome
        if outcome is None or outcome.status in (None, "RUNNING") or done.notes:
            raise SystemExit(f"the uninterrupted {scenario.name} run did not finish: {done.notes}")
        refs[scenario.name] = Reference(outcome, done.boundaries, done.active_s, done.requests)
    return refs


def plans(
    scenarios: Sequence[Scenario], kinds: Sequence[str], refs: dict[str, Reference], args: Any
) -> list[Plan]:
    """``--runs`` plans, cycling through scenario x kind; boundary kills spread evenly."""
    combos = [(s, k) for k in kinds for s in scenarios]
    per = Counter(
        (combos[i % len(combos)][0].name, combos[i % len(combos)][1]) for i in range(args.runs)
    )
    seen: Counter[tuple[str, str]] = Counter()
    out = []
    for i in range(args.runs):
        scenario, kind = combos[i % len(combos)]
        ref = refs[scenario.name]
        key = (scenario.name, kind)
        j, m, n = seen[key], per[key], ref.boundaries
        seen[key] += 1
        rng = random.Random(f"{args.seed}:{i}")
        if kind == "boundary":
            out.append(Plan(i, scenario, kind, float(j % n if m >= n else j * n // m)))
            continue
        latency = args.latency_ms if rng.random() < 0.5 else 0.0
        span = ref.active_s + ref.requests * latency / 1000
        early = scenario.callback is not None and rng.random() < 0.5
        out.append(Plan(i, scenario, kind, rng.uniform(0, span), latency, early))
    return out


def run_all(todo: list[Plan], refs: dict[str, Reference], base: Path, args: Any) -> list[RunResult]:
    """Run the plans on ``--jobs`` threads (each drives its own worker processes)."""
    results: list[RunResult] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {
            pool.submit(
                Run(
                    p, base / f"run-{p.index:04d}-{p.scenario.name}", refs[p.scenario.name], args
                ).execute
            ): p
            for p in todo
        }
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as e:  # the run could not even be scored: count it as lost
                result = RunResult(futures[future], Counter(lost=1), notes=[repr(e)])
            results.append(result)
            if result.directory is not None and (not sum(result.counts.values()) or not args.keep):
                shutil.rmtree(result.directory, ignore_errors=True)
            if len(results) % 25 == 0 or len(results) == len(todo):
                kills = sum(len(r.kills) for r in results)
                bad = sum(1 for r in results if sum(r.counts.values()))
                print(f"  {len(results)}/{len(todo)} runs, {kills} kills, {bad} with problems",
                      file=sys.stderr, flush=True)  # fmt: skip
    return sorted(results, key=lambda r: r.plan.index)


def report(
    results: list[RunResult], refs: dict[str, Reference], args: Any, seconds: float
) -> dict[str, Any]:
    """Print the per-scenario table, the kill positions and the summary lines (last)."""
    for r in [r for r in results if sum(r.counts.values())][:10]:
        bad = {k: v for k, v in r.counts.items() if v}
        print(f"PROBLEM run {r.plan.index} {r.plan.scenario.name} ({r.plan.kind}, first kill "
              f"{r.plan.first:.3f}): {bad}; kills at {r.kills}; {r.notes}"
              + (f"; files kept in {r.directory}" if args.keep else ""))  # fmt: skip
    head = ["runs", "kills", "@bound", "@random", "repeats", *COUNTS]
    print(f"{'scenario':<20}" + "".join(f"{SHORT.get(h, h):>9}" for h in head))
    table: dict[str, dict[str, int]] = {}
    for name in [*dict.fromkeys(r.plan.scenario.name for r in results), "total"]:
        rows = [r for r in results if name in ("total", r.plan.scenario.name)]
        row = {
            "runs": len(rows),
            "kills": sum(len(r.kills) for r in rows),
            "@bound": sum(len(r.kills) for r in rows if r.plan.kind == "boundary"),
            "@random": sum(len(r.kills) for r in rows if r.plan.kind == "random"),
            "repeats": sum(r.repeated_requests for r in rows),
            **{c: sum(r.counts[c] for r in rows) for c in COUNTS},
        }
        table[name] = row
        print(f"{name:<20}" + "".join(f"{row[h]:>9}" for h in head))
    killed_at: dict[str, set[int]] = {name: set() for name in refs}
    for r in results:
        if r.plan.kind == "boundary" and r.kills:
            killed_at[r.plan.scenario.name].add(int(r.plan.first))
    covered = {name: f"{len(killed_at[name])}/{ref.boundaries}" for name, ref in refs.items()}
    print("checkpoint boundaries killed at (first kill of a run): "
          + ", ".join(f"{name} {n}" for name, n in covered.items()))  # fmt: skip
    positions = Counter(p for r in results for p in r.kills)
    print("kills by position: " + "; ".join(f"{p}: {n}" for p, n in positions.most_common()))
    total = table["total"]
    print(f"crash harness: runs={total['runs']} kills={total['kills']} "
          f"(at checkpoint boundaries={total['@bound']}, at random points={total['@random']}) "
          f"repeated_requests={total['repeats']} (re-sent after a kill, absorbed by the key) "
          f"seconds={seconds:.0f}")  # fmt: skip
    print(f"crash harness: runs={total['runs']} kills={total['kills']} "
          + " ".join(f"{c}={total[c]}" for c in COUNTS), flush=True)  # fmt: skip
    return {
        "runs": total["runs"],
        "kills": total["kills"],
        "kills_at_boundaries": total["@bound"],
        "kills_at_random_points": total["@random"],
        "repeated_requests": total["repeats"],
        "counts": {c: total[c] for c in COUNTS},
        "kill_positions": dict(positions.most_common()),
        "boundaries_covered": covered,
        "scenarios": {k: v for k, v in table.items() if k != "total"},
    }


def _commit() -> str:
    """The checkout measured: HEAD, marked ``+dirty`` if the library or examples differ."""

    def git(*a: str) -> str:
        done = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "durable_core", "saga", "examples")
    return git("rev-parse", "HEAD") + ("+dirty" if dirty else "")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(prog="bench/crash_harness.py", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=500, help="runs in all (default 500)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--store-dir", type=Path, help="where run directories go (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the files of runs with problems")
    p.add_argument("--jobs", type=int, default=3, help="runs at once (default 3)")
    p.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="repeatable")
    p.add_argument("--kind", choices=[*KINDS, "both"], default="both")
    p.add_argument("--max-kills", type=int, default=4, help="kills per run at most (default 4)")
    p.add_argument("--latency-ms", type=float, default=5.0, help="max in-request latency")
    p.add_argument("--break", dest="breaks", choices=BREAKS, help="self-test: break something")
    p.add_argument(
        "--out", type=Path, help=f"JSON result (default {DEFAULT_OUT.relative_to(ROOT)})"
    )
    args = p.parse_args(argv)
    if args.runs < 1 or not 1 <= args.jobs <= 8 or args.max_kills < 1:
        p.error("--runs and --max-kills must be at least 1, --jobs between 1 and 8")
    if args.out is None and args.breaks is None:
        args.out = DEFAULT_OUT
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the harness; return 1 if any count is not 0."""
    args = parse(argv)
    scenarios = [SCENARIOS[n] for n in args.scenario or SCENARIOS]
    kinds = KINDS if args.kind == "both" else (args.kind,)
    started = time.monotonic()
    if args.store_dir is not None:
        args.store_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="crash-", dir=args.store_dir) as tmp:
        base = Path(tmp)
        refs = references(scenarios, base, args)
        for name, ref in refs.items():
            print(f"  reference {name}: {ref.outcome.saga_status}, {ref.boundaries} boundaries, "
                  f"{len(ref.outcome.effects)} effects, {ref.active_s * 1000:.0f} ms active",
                  file=sys.stderr)  # fmt: skip
        results = run_all(plans(scenarios, kinds, refs, args), refs, base, args)
        if args.keep:  # the temporary directory goes; keep what failed next to it
            for r in results:
                if r.directory is not None and r.directory.exists():
                    shutil.copytree(r.directory, base.parent / f"kept-{r.directory.name}")
                    r.directory = base.parent / f"kept-{r.directory.name}"
    seconds = time.monotonic() - started
    summary = report(results, refs, args, seconds)
    if args.out is not None:
        command = "python bench/crash_harness.py " + shlex.join(
            sys.argv[1:] if argv is None else argv
        )
        record = {
            "command": command.strip(),
            "seed": args.seed,
            "jobs": args.jobs,
            "max_kills": args.max_kills,
            "break": args.breaks,
            **summary,
            "seconds": round(seconds, 1),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": _commit(),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpus, "
            f"python {platform.python_version()}",
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 1 if any(summary["counts"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
